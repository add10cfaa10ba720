"""The api's subscription fan-out over real websockets (uvicorn in-process) and real NATS facts:
venRegistrations, optResponses and readings get what they ask for and nothing else; many clients
share one NATS subscription per subject family; a client that stops reading is dropped without
delaying anyone else."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from datetime import timedelta

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from adrstack.api.fanout import SLOW_CLOSE_CODE
from adrstack.shared.jetstream import ensure_stream, publish
from adrstack.shared.messages import (
    DrEvent,
    EventInterval,
    EventStatus,
    EventTargets,
    EventTransition,
    OptResponse,
    Reading,
    ReportData,
    Transition,
    VenDeregistered,
    VenRegistered,
    VenSeen,
    utcnow,
)

from tests.helpers import eventually

from .helpers import health, recv, served, transport_ws_subscribe

WS = "graphql-transport-ws"
# How late a reading-along client may get a report while another client has stopped reading.
FAST_DEADLINE = 3.0
QUEUE = 16


@pytest.fixture
async def js(nc, api_settings):
    js = nc.jetstream()
    await ensure_stream(js, api_settings)
    return js


@pytest.fixture
async def server(api_settings):
    async with served(api_settings.model_copy(update={"subscription_queue": QUEUE})) as host:
        yield host


async def hub_has(host: str, subscribers: int) -> dict | None:
    hub = (await health(host))["subscriptionHub"]
    return hub if hub["subscribers"] == subscribers else None


def report(ven_id: str, values: list[float]) -> ReportData:
    at = utcnow()
    return ReportData(ven_id=ven_id, report_specifier_id="rs-1", readings=[
        Reading(report_specifier_id="rs-1", r_id=f"r{i}", at=at, value=v, measurement="RealPower", unit="W")
        for i, v in enumerate(values)])


def transition(event_id: str) -> EventTransition:
    event = DrEvent(event_id=event_id, status=EventStatus.FAR, modification_number=0,
                    start_at=utcnow() + timedelta(hours=1),
                    intervals=[EventInterval(duration=timedelta(hours=1), payload=1)],
                    targets=EventTargets(ven_ids=["ven-a"]))
    return EventTransition(event_id=event_id, transition=Transition.CREATED, event=event)


async def collect_until(ws, last: dict[str, object]) -> dict[str, list]:
    """Each operation's payloads, in order, until each has delivered its ``last`` one."""
    got: dict[str, list] = {op: [] for op in last}
    done: set[str] = set()
    while done != set(last):
        msg = await recv(ws)
        assert msg["type"] == "next", msg
        op = msg["id"]
        assert op not in done, f"{op} got {msg} after its last fact"
        (payload,) = msg["payload"]["data"].values()
        got[op].append(payload)
        if payload == last[op]:
            done.add(op)
    return got


async def test_each_subscription_gets_what_it_asks_for_and_nothing_else(server, js, api_settings):
    s = api_settings.subjects
    async with websockets.connect(f"ws://{server}/graphql", subprotocols=[WS]) as ws:
        await transport_ws_subscribe(ws, "subscription { venRegistrations { venId kind venName registrationId "
                                         "reregistration reason } }", "reg")
        await transport_ws_subscribe(ws, 'subscription { optResponses(eventId: "ev-1") { venId eventId optType '
                                         "modificationNumber source } }", "opt", init=False)
        await transport_ws_subscribe(ws, 'subscription { readings(venId: "ven-a") { venId rId value unit } }',
                                     "ven-a", init=False)
        await transport_ws_subscribe(ws, "subscription { readings { venId value } }", "all", init=False)
        hub = await eventually(lambda: hub_has(server, 4), timeout=10)
        # Registrations and opt responses share a family that never carries a report.
        assert hub["natsSubscriptions"] == 2 and hub["websocketClients"] == 1
        assert hub["families"]["lifecycle"]["subscribers"] == 2 and hub["families"]["readings"]["subscribers"] == 2

        await publish(js, s.ven_registered("ven-a"), VenRegistered(ven_id="ven-a", ven_name="b-a",
                                                                    registration_id="reg-a"))
        await publish(js, s.seen("ven-a"), VenSeen(ven_id="ven-a"))
        await publish(js, s.opt("ven-a"), OptResponse(ven_id="ven-a", event_id="ev-2", opt_type="optIn"))
        await publish(js, s.opt("ven-b"), OptResponse(ven_id="ven-b", event_id="ev-1", opt_type="optOut",
                                                      modification_number=0))
        await publish(js, s.report_data("ven-b"), report("ven-b", [7.0]))
        await publish(js, s.report_data("ven-a"), report("ven-a", [1.0, 2.0]))
        await publish(js, s.event("ev-1", "created"), transition("ev-1"))
        await publish(js, s.ven_deregistered("ven-b"), VenDeregistered(ven_id="ven-b", reason="cancelled"))
        await publish(js, s.opt("ven-a"), OptResponse(ven_id="ven-a", event_id="ev-1", opt_type="optIn",
                                                      modification_number=1, source="oadrCreateOpt"))
        await publish(js, s.report_data("ven-a"), report("ven-a", [3.0]))

        last_registration = {"venId": "ven-b", "kind": "deregistered", "venName": None, "registrationId": None,
                             "reregistration": False, "reason": "cancelled"}
        last_opt = {"venId": "ven-a", "eventId": "ev-1", "optType": "optIn", "modificationNumber": 1,
                    "source": "oadrCreateOpt"}
        last_a = [{"venId": "ven-a", "rId": "r0", "value": 3.0, "unit": "W"}]
        got = await collect_until(ws, {"reg": last_registration, "opt": last_opt, "ven-a": last_a,
                                       "all": [{"venId": "ven-a", "value": 3.0}]})
    assert got["reg"] == [{"venId": "ven-a", "kind": "registered", "venName": "b-a", "registrationId": "reg-a",
                           "reregistration": False, "reason": None}, last_registration]
    assert got["opt"] == [{"venId": "ven-b", "eventId": "ev-1", "optType": "optOut", "modificationNumber": 0,
                           "source": "oadrCreatedEvent"}, last_opt]
    assert got["ven-a"] == [[{"venId": "ven-a", "rId": "r0", "value": 1.0, "unit": "W"},
                             {"venId": "ven-a", "rId": "r1", "value": 2.0, "unit": "W"}], last_a]
    assert got["all"] == [[{"venId": "ven-b", "value": 7.0}],
                          [{"venId": "ven-a", "value": 1.0}, {"venId": "ven-a", "value": 2.0}],
                          [{"venId": "ven-a", "value": 3.0}]]
    await eventually(lambda: hub_has(server, 0), timeout=10)


async def test_many_clients_share_one_nats_subscription(server, js, api_settings):
    clients = 12
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(websockets.connect(f"ws://{server}/graphql", subprotocols=[WS]))
                   for _ in range(clients)]
        for i, ws in enumerate(sockets):
            # Half ask for one event: filtered in the hub, not by a narrower NATS subscription.
            args = '(eventId: "ev-shared")' if i % 2 else ""
            await transport_ws_subscribe(ws, f"subscription {{ eventUpdates{args} {{ eventId transition }} }}")
        hub = await eventually(lambda: hub_has(server, clients), timeout=10)
        assert hub["natsSubscriptions"] == 1 and hub["websocketClients"] == clients
        assert hub["families"]["events"]["subscribers"] == clients

        await publish(js, api_settings.subjects.event("ev-other", "created"), transition("ev-other"))
        await publish(js, api_settings.subjects.event("ev-shared", "created"), transition("ev-shared"))
        for i, ws in enumerate(sockets):
            expected = ["ev-shared"] if i % 2 else ["ev-other", "ev-shared"]
            got = [(await recv(ws))["payload"]["data"]["eventUpdates"]["eventId"] for _ in expected]
            assert got == expected, i
    hub = await eventually(lambda: hub_has(server, 0), timeout=10)
    # Kept for the process: the next subscriber opens nothing new.
    assert hub["natsSubscriptions"] == 1 and hub["families"]["events"]["delivered"] == clients // 2 * 3


def stalled_socket(host: str) -> socket.socket:
    """A connected socket with a small receive buffer, so a client that stops reading pushes back on
    the server after a few messages rather than after megabytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    address, port = host.split(":")
    sock.connect((address, int(port)))
    sock.setblocking(False)
    return sock


async def test_a_client_that_stops_reading_is_dropped_and_delays_no_one(server, nc, js, api_settings):
    query = 'subscription { readings(venId: "ven-a") { rId value } }'
    values = [float(i) for i in range(1000)]  # ~25 kB a message: the stalled socket fills quickly
    sock = stalled_socket(server)
    try:
        async with websockets.connect(f"ws://{server}/graphql", subprotocols=[WS], sock=sock,
                                      max_queue=1, compression=None) as slow, \
                websockets.connect(f"ws://{server}/graphql", subprotocols=[WS]) as fast:
            await transport_ws_subscribe(slow, query)  # and never read again
            await transport_ws_subscribe(fast, query)
            await eventually(lambda: hub_has(server, 2), timeout=10)
            subject = api_settings.subjects.report_data("ven-a")
            deadline = time.monotonic() + 60
            published = 0
            while (await health(server))["subscriptionHub"]["families"]["readings"]["dropped"] == 0:
                assert time.monotonic() < deadline, f"slow client not dropped after {published} reports"
                for _ in range(QUEUE):
                    values[0] = float(published)
                    await nc.publish(subject, report("ven-a", values).to_bytes())
                    published += 1
                    started = time.monotonic()
                    msg = await recv(fast, FAST_DEADLINE)
                    assert time.monotonic() - started < FAST_DEADLINE
                    assert msg["payload"]["data"]["readings"][0] == {"rId": "r0", "value": float(published - 1)}
            hub = await hub_has(server, 1)
            assert hub is not None and hub["families"]["readings"]["subscribers"] == 1 and hub["websocketClients"] == 1
            # The one left still gets every report, at once.
            await nc.publish(subject, report("ven-a", [-1.0]).to_bytes())
            assert (await recv(fast, FAST_DEADLINE))["payload"]["data"]["readings"] == [{"rId": "r0", "value": -1.0}]

            # Reading again, the slow client finds what was already on its way, then the close that says why.
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(slow.recv(), 10)
            assert slow.close_code == SLOW_CLOSE_CODE
            assert "slow subscriber" in slow.close_reason
    finally:
        sock.close()
