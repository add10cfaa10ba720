"""API tokens on the GraphQL websocket (uvicorn in-process, real NATS facts), with ADRSTACK_API_AUTH
on: the token in connection_init or on the upgrade request; none or a bad one closes with 4401;
an operation above the token's role is refused with FORBIDDEN."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from adrstack.shared.api_tokens import Role, create_token, revoke_token
from adrstack.shared.jetstream import ensure_stream, publish
from adrstack.shared.messages import (
    DrEvent,
    EventInterval,
    EventStatus,
    EventTargets,
    EventTransition,
    Transition,
    utcnow,
)

from tests.helpers import eventually

from .helpers import served

RECV_TIMEOUT = 10.0
EVENT_UPDATES = "subscription { eventUpdates { eventId transition } }"


@pytest.fixture
async def server(secure_settings):
    async with served(secure_settings) as host:
        yield host


async def recv(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))


async def closed_with(ws) -> int:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    return ws.close_code


async def init(ws, payload: dict | None) -> None:
    await ws.send(json.dumps({"type": "connection_init", **({} if payload is None else {"payload": payload})}))


def transition(event_id: str) -> EventTransition:
    event = DrEvent(event_id=event_id, status=EventStatus.FAR, modification_number=0,
                    start_at=utcnow() + timedelta(hours=1),
                    intervals=[EventInterval(duration=timedelta(hours=1), payload=1)],
                    targets=EventTargets(ven_ids=["ven-a"]))
    return EventTransition(event_id=event_id, transition=Transition.CREATED, event=event)


async def receives_a_fact(ws, secure_settings, nc) -> None:
    """Subscribe on an acknowledged connection; facts published until one arrives."""
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENT_UPDATES}}))
    js = nc.jetstream()
    await ensure_stream(js, secure_settings)

    async def delivered() -> dict | None:
        await publish(js, secure_settings.subjects.event("ev-ws", "created"), transition("ev-ws"))
        try:
            return json.loads(await asyncio.wait_for(ws.recv(), 0.5))
        except asyncio.TimeoutError:
            return None

    msg = await eventually(delivered, timeout=RECV_TIMEOUT)
    assert msg["type"] == "next" and msg["payload"]["data"]["eventUpdates"] == {"eventId": "ev-ws",
                                                                                "transition": "created"}


@pytest.mark.parametrize("payload", [None, {}, {"authorization": "Bearer not-a-token"},
                                     {"authorization": "adrs_000000000000_" + "A" * 43}])
async def test_graphql_transport_ws_without_a_valid_token_is_closed_4401(server, payload):
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await init(ws, payload)
        assert await closed_with(ws) == 4401


async def test_a_viewer_token_in_connection_init_subscribes(server, secure_settings, tokens, nc):
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await init(ws, {"authorization": f"Bearer {tokens['viewer']}"})
        assert (await recv(ws))["type"] == "connection_ack"
        await receives_a_fact(ws, secure_settings, nc)


async def test_a_token_on_the_upgrade_request_subscribes(server, secure_settings, tokens, nc):
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"],
                                  additional_headers={"Authorization": f"Bearer {tokens['viewer']}"}) as ws:
        await init(ws, {})
        assert (await recv(ws))["type"] == "connection_ack"
        await receives_a_fact(ws, secure_settings, nc)


async def test_an_operation_above_the_role_is_forbidden_on_the_socket(server, tokens, scheduler):
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await init(ws, {"authorization": f"Bearer {tokens['viewer']}"})
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "m", "type": "subscribe", "payload": {
            "query": 'mutation { cancelEvent(eventId: "ev-1") { eventId } }'}}))
        msg = await recv(ws)
        assert (msg["type"], msg["id"]) == ("error", "m"), msg
        assert msg["payload"][0]["extensions"]["code"] == "FORBIDDEN", msg
        await ws.send(json.dumps({"id": "q", "type": "subscribe", "payload": {"query": "{ vens { venId } }"}}))
        msg = await recv(ws)
        assert msg["type"] == "next" and msg["payload"] == {"data": {"vens": []}}, msg
    assert scheduler.requests == []


async def test_a_revoked_token_cannot_connect(server, engine):
    issued = await create_token(engine, Role.VIEWER)
    await revoke_token(engine, issued.row.id)
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await init(ws, {"authorization": f"Bearer {issued.token}"})
        assert await closed_with(ws) == 4401


async def test_legacy_graphql_ws_refuses_with_connection_error_then_4401(server, tokens):
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-ws"]) as ws:
        await init(ws, {})
        msg = await recv(ws)
        assert msg["type"] == "connection_error"
        assert msg["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
        assert await closed_with(ws) == 4401
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=["graphql-ws"]) as ws:
        await init(ws, {"authorization": f"Bearer {tokens['viewer']}"})
        assert (await recv(ws))["type"] == "connection_ack"
