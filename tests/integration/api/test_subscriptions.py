"""GraphQL subscriptions over a real websocket (uvicorn in-process) fed by real NATS facts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import websockets

from adrstack.shared.jetstream import ensure_stream, publish
from adrstack.shared.messages import (
    DrEvent,
    EventInterval,
    EventStatus,
    EventTargets,
    EventTransition,
    Transition,
    VenRegistered,
    VenSeen,
    utcnow,
)

from tests.helpers import eventually

from .helpers import live_subscriptions, recv, served, transport_ws_subscribe


@pytest.fixture
async def server(api_settings):
    async with served(api_settings) as host:
        yield host


@pytest.fixture
async def js(nc, api_settings):
    js = nc.jetstream()
    await ensure_stream(js, api_settings)
    return js


def transition(event_id: str, kind: Transition, status: EventStatus, mod: int = 0) -> EventTransition:
    event = DrEvent(
        event_id=event_id, status=status, modification_number=mod, start_at=utcnow() + timedelta(hours=1),
        intervals=[EventInterval(duration=timedelta(hours=1), payload=2)], targets=EventTargets(ven_ids=["ven-a"]),
    )
    return EventTransition(event_id=event_id, transition=kind, event=event)


EVENT_UPDATES = """subscription { eventUpdates { eventId transition status modificationNumber occurredAt
  event { intervals { duration payload } targets { venIds } } } }"""


async def test_event_updates_receives_a_fact_and_unsubscribes_on_disconnect(server, js, api_settings):
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await transport_ws_subscribe(ws, EVENT_UPDATES)
        await eventually(lambda: live_subscriptions(server), timeout=10)
        fact = transition("ev-sub", Transition.CREATED, EventStatus.FAR)
        await publish(js, api_settings.subjects.event("ev-sub", "created"), fact)
        msg = await recv(ws)
        assert msg["type"] == "next" and msg["id"] == "1", msg
        update = msg["payload"]["data"]["eventUpdates"]
        assert update["eventId"] == "ev-sub"
        assert (update["transition"], update["status"], update["modificationNumber"]) == ("created", "far", 0)
        assert update["occurredAt"] == fact.occurred_at.isoformat()
        assert update["event"] == {"intervals": [{"duration": "PT1H", "payload": 2.0}], "targets": {"venIds": ["ven-a"]}}

        await publish(js, api_settings.subjects.event("ev-sub", "cancelled"),
                      transition("ev-sub", Transition.CANCELLED, EventStatus.CANCELLED, 1))
        update = (await recv(ws))["payload"]["data"]["eventUpdates"]
        assert (update["transition"], update["status"], update["modificationNumber"]) == ("cancelled", "cancelled", 1)
    # The client went away: the NATS subscription behind it is gone too.
    await eventually(lambda: no_live_subscriptions(server), timeout=10)


async def no_live_subscriptions(host: str) -> bool:
    return await live_subscriptions(host) == 0


async def test_event_updates_for_one_event_only(server, js, api_settings):
    query = 'subscription { eventUpdates(eventId: "ev-2") { eventId transition } }'
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await transport_ws_subscribe(ws, query)
        await eventually(lambda: live_subscriptions(server), timeout=10)
        await publish(js, api_settings.subjects.event("ev-1", "created"), transition("ev-1", Transition.CREATED, EventStatus.FAR))
        await publish(js, api_settings.subjects.event("ev-2", "near"), transition("ev-2", Transition.NEAR, EventStatus.NEAR))
        update = (await recv(ws))["payload"]["data"]["eventUpdates"]
        assert update == {"eventId": "ev-2", "transition": "near"}


async def test_ven_activity_over_the_legacy_graphql_ws_protocol(server, js, api_settings):
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "a", "type": "start",
                                  "payload": {"query": "subscription { venActivity { venId kind occurredAt } }"}}))
        await eventually(lambda: live_subscriptions(server), timeout=10)
        registered = VenRegistered(ven_id="ven-a", ven_name="building-a", registration_id="reg-a")
        seen = VenSeen(ven_id="ven-b")
        await publish(js, api_settings.subjects.ven_registered("ven-a"), registered)
        await publish(js, api_settings.subjects.seen("ven-b"), seen)
        got = []
        while len(got) < 2:
            msg = await recv(ws)
            if msg["type"] == "ka":
                continue
            assert msg["type"] == "data", msg
            got.append(msg["payload"]["data"]["venActivity"])
        assert got == [
            {"venId": "ven-a", "kind": "registered", "occurredAt": registered.occurred_at.isoformat()},
            {"venId": "ven-b", "kind": "seen", "occurredAt": seen.occurred_at.isoformat()},
        ]


async def test_a_fact_sent_again_with_the_same_id_reaches_a_subscriber_once(server, js, api_settings):
    """A scheduler replica may publish another replica's just-committed fact again (same id, so
    JetStream stores it once); core subscribers get both copies, the GraphQL subscriber one."""
    query = 'subscription { eventUpdates(eventId: "ev-dup") { transition modificationNumber } }'
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await transport_ws_subscribe(ws, query)
        await eventually(lambda: live_subscriptions(server), timeout=10)
        subject = api_settings.subjects.event("ev-dup", "completed")
        fact = transition("ev-dup", Transition.COMPLETED, EventStatus.COMPLETED)
        again = fact.model_copy(update={"occurred_at": utcnow()})  # a re-send: same id, its own time
        await publish(js, subject, fact)
        await publish(js, subject, again)
        await publish(js, api_settings.subjects.event("ev-dup", "cancelled"),
                      transition("ev-dup", Transition.CANCELLED, EventStatus.CANCELLED, 1))
        got = [(await recv(ws))["payload"]["data"]["eventUpdates"] for _ in range(2)]
        assert got == [{"transition": "completed", "modificationNumber": 0},
                       {"transition": "cancelled", "modificationNumber": 1}]
