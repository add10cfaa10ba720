"""GraphQL subscriptions as async generators over core NATS subscriptions.

Facts published to JetStream are delivered to core subscribers too, so no consumer is
needed: a subscription only sees facts from the moment it starts, which is what a live
view wants. The NATS subscription is dropped when the client goes away (the generator
is closed or cancelled) and ends when the connection drains at shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from typing import AsyncIterator

from nats.aio.msg import Msg
from pydantic import ValidationError

from adrstack.shared.messages import EventTransition, Message, decode

from .state import ApiState

log = logging.getLogger(__name__)

# Messages a slow websocket client may fall behind by before NATS drops for it.
PENDING_LIMIT = 10_000
# How many fact ids a subscription remembers to pass a re-sent fact on once.
RECENT_IDS = 4096


class RecentIds:
    """The last ``size`` ids seen. A fact may be published again with the same id (a scheduler
    replica repairing another's just-committed state, a retried publish): JetStream stores it
    once (Nats-Msg-Id), but core subscribers like this one get every copy."""

    def __init__(self, size: int = RECENT_IDS):
        self.size = size
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def first_time(self, fact_id: str) -> bool:
        if fact_id in self._ids:
            return False
        self._ids.add(fact_id)
        self._order.append(fact_id)
        if len(self._order) > self.size:
            self._ids.discard(self._order.popleft())
        return True


async def nats_messages(state: ApiState, subject: str) -> AsyncIterator[Msg]:
    """Each fact once, in the order NATS delivers them."""
    sub = await state.nc.subscribe(subject, pending_msgs_limit=PENDING_LIMIT)
    state.live_subscriptions += 1
    recent = RecentIds()
    try:
        async for msg in sub.messages:
            fact_id = (msg.headers or {}).get("Nats-Msg-Id")
            if fact_id is not None and not recent.first_time(fact_id):
                continue
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
