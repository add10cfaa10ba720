"""GraphQL subscriptions as async generators over the api's fan-out hub (fanout).

Facts published to JetStream are delivered to core subscribers too, so no consumer is needed:
a subscription only sees facts from the moment it starts, which is what a live view wants.
Filtering by VEN or event happens in the hub, against the one NATS subscription of the family,
so a client asking for one VEN costs no extra NATS subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, Callable

from starlette.websockets import WebSocket

from .errors import ApiError
from .fanout import SLOW_CLOSE_CODE, Fact, everything
from .state import ApiState


REGISTRATION_KINDS = ("registered", "deregistered")


async def hub_facts(state: ApiState, family: str, ident: str | None = None, wants: Callable[[Fact], bool] = everything,
                    client: object = None) -> AsyncIterator[Fact]:
    """The facts of ``family`` about ``ident`` (None: any) that ``wants`` keeps, from now on;
    ``client`` is the websocket, closed (with the reason) when this subscriber is dropped for being slow."""
    async with state.hub.subscribe(family, ident, wants, client) as subscriber:
        try:
            async for fact in subscriber.facts():
                yield fact
        except ApiError as e:
            if e.code != "slow_subscriber" or not isinstance(client, WebSocket):
                raise  # over HTTP (multipart) the error ends the stream
            # The operation's error would never get through a socket the client stopped reading;
            # the close frame does (or the socket is aborted), and the client can tell why.
            with contextlib.suppress(Exception):
                await client.close(SLOW_CLOSE_CODE, "slow subscriber: " + e.detail)
        else:
            return
    # Nothing may be sent after the close: wait, outside the hub, for strawberry to cancel this
    # operation as the closed connection ends.
    await asyncio.Event().wait()


def event_transitions(state: ApiState, event_id: str | None, client: object = None) -> AsyncIterator[Fact]:
    return hub_facts(state, "events", event_id, client=client)


def ven_facts(state: ApiState, ven_id: str | None, client: object = None) -> AsyncIterator[Fact]:
    """Every VEN fact (reports too); ``kind`` is the subject suffix (e.g. ``report.data``)."""
    return hub_facts(state, "ven", ven_id, client=client)


def registrations(state: ApiState, client: object = None) -> AsyncIterator[Fact]:
    return hub_facts(state, "lifecycle", None, lambda fact: fact.kind in REGISTRATION_KINDS, client)


def opt_responses(state: ApiState, event_id: str | None, client: object = None) -> AsyncIterator[Fact]:
    # The event id is in the fact, not its subject (ven.<venId>.opt): a filter, not an index.
    return hub_facts(state, "lifecycle", None, lambda fact: fact.kind == "opt" and (
        event_id is None or fact.message.event_id == event_id), client)


def report_data(state: ApiState, ven_id: str | None, client: object = None) -> AsyncIterator[Fact]:
    return hub_facts(state, "readings", ven_id, client=client)
