"""GraphQL subscriptions as async generators over core NATS subscriptions.

Facts published to JetStream are delivered to core subscribers too, so no consumer is
needed: a subscription only sees facts from the moment it starts, which is what a live
view wants. The NATS subscription is dropped when the client goes away (the generator
is closed or cancelled) and ends when the connection drains at shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from typing import AsyncIterator

from nats.aio.msg import Msg
from pydantic import ValidationError

from adrstack.shared.messages import EventTransition, Message, decode

from .state import ApiState

log = logging.getLogger(__name__)

# Messages a slow websocket client may fall behind by before NATS drops for it.
PENDING_LIMIT = 10_000


async def nats_messages(state: ApiState, subject: str) -> AsyncIterator[Msg]:
    sub = await state.nc.subscribe(subject, pending_msgs_limit=PENDING_LIMIT)
    state.live_subscriptions += 1
    try:
        async for msg in sub.messages:
            yield msg
    finally:
        state.live_subscriptions -= 1
        # The connection may already be closed or draining at shutdown.
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def event_transitions(state: ApiState, event_id: str | None) -> AsyncIterator[EventTransition]:
    subjects = state.subjects
    subject = subjects.all_event_facts if event_id is None else f"{subjects.prefix}.event.{event_id}.*"
    # aclosing: when the client goes away mid-stream, the NATS subscription goes now, not at GC.
    async with contextlib.aclosing(nats_messages(state, subject)) as messages:
        async for msg in messages:
            try:
                fact = decode(EventTransition, msg.data)
            except ValidationError as e:
                log.warning("skipping malformed event fact on %s: %s", msg.subject, e)
                continue
            yield fact


async def ven_facts(state: ApiState, ven_id: str | None) -> AsyncIterator[tuple[str, str, Message]]:
    """(ven_id, kind, message) for every VEN fact; kind is the subject suffix (e.g. ``report.data``)."""
    subjects = state.subjects
    subject = subjects.all_ven_facts if ven_id is None else f"{subjects.prefix}.ven.{ven_id}.>"
    async with contextlib.aclosing(nats_messages(state, subject)) as messages:
        async for msg in messages:
            try:
                _, fact_ven_id, kind = subjects.parse(msg.subject)
                fact = decode(Message, msg.data)
            except (ValueError, ValidationError) as e:
                log.warning("skipping malformed VEN fact on %s: %s", msg.subject, e)
                continue
            yield fact_ven_id, kind, fact
