"""oadrUpdateReport at volume: every report's readings in the stream exactly once, the VEN told
"OK" only once JetStream has them, and told to re-send (469) when it cannot store them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from openleadr.messaging import create_message

from .test_reports import add_usage_report

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def update(client, k: int, intervals: int = 10, value: float = 1.5) -> str:
    """Report k of a VEN: its own ``intervals`` readings (times no other report of the VEN uses),
    for the report request the VTN issued to it (rule 304)."""
    return create_message("oadrUpdateReport", ven_id=client.ven_id, request_id=f"u-{k}", reports=[{
        "report_request_id": issued(client), "report_specifier_id": "usage-1", "report_name": "TELEMETRY_USAGE",
        "created_date_time": T0,
        "intervals": [{"dtstart": T0 + timedelta(seconds=k * 100 + i), "report_payload": {"r_id": "power-1",
                                                                                          "value": value}}
                      for i in range(intervals)]}])


def issued(client) -> str:
    """The reportRequestID the VTN sent the VEN in answer to its oadrRegisterReport."""
    [request] = client.report_requests
    return request["report_request_id"]


async def reporting_ven(vens, gateway, name: str):
    client = vens(name, gateway.vtn_url)
    add_usage_report(client)
    await client.create_party_registration()
    await client.register_reports(client.reports)
    assert client.ven_id
    return client


async def send(client, body: str) -> int:
    response_type, payload = await client._perform_request("EiReport", body)
    assert response_type == "oadrUpdatedReport", (response_type, payload)
    return payload["response"]["response_code"]


async def test_a_burst_from_several_vens_lands_exactly_once(gateway, bus, vens):
    clients = [await reporting_ven(vens, gateway, f"burst-{i}") for i in range(5)]
    per_ven = 30
    codes = await asyncio.gather(*(send(c, update(c, k)) for k in range(per_ven) for c in clients))
    assert codes == [200] * (per_ven * len(clients))

    for client in clients:
        facts = await bus.stored(bus.subjects.report_data(client.ven_id))
        assert len(facts) == per_ven, len(facts)
        assert len({f["id"] for f in facts}) == per_ven
        ats = sorted(r["at"] for f in facts for r in f["readings"])
        assert len(ats) == len(set(ats)) == per_ven * 10
        for fact in facts:
            assert fact["ven_id"] == client.ven_id and fact["report_request_id"] == issued(client)
            assert {(r["r_id"], r["value"], r["unit"], r["resource_id"]) for r in fact["readings"]} == \
                {("power-1", 1.5, "W", "meter-1")}


async def test_a_resent_report_is_stored_once(gateway, bus, vens):
    client = await reporting_ven(vens, gateway, "resender")
    body = update(client, 7)
    assert await send(client, body) == 200
    assert await send(client, body) == 200  # e.g. our answer was lost on the way: the VEN sends again
    assert await asyncio.gather(send(client, body), send(client, body)) == [200, 200]
    # The same readings in a new message (another requestID) are the same fact too.
    assert await send(client, body.replace("u-7", "u-7-again")) == 200
    [fact] = await bus.stored(bus.subjects.report_data(client.ven_id))
    assert len(fact["readings"]) == 10
    # Different readings are a new fact.
    assert await send(client, update(client, 7, value=2.5)) == 200
    assert len(await bus.stored(bus.subjects.report_data(client.ven_id))) == 2


async def test_readings_the_stream_refuses_are_not_acknowledged(gateway, bus, vens):
    clients = [await reporting_ven(vens, gateway, f"refused-{i}") for i in range(3)]
    info = await bus.js.stream_info(gateway.settings.stream_name)
    config = info.config
    every_subject = list(config.subjects)
    prefix = bus.subjects.prefix
    # The stream keeps every VEN fact except report data: publishes of readings find no stream.
    config.subjects = [s for s in every_subject if not s.startswith(f"{prefix}.ven.")] + [
        f"{prefix}.ven.*.{kind}" for kind in ("registered", "deregistered", "report.registered", "opt",
                                              "opt.schedule", "seen", "push.failed")]
    await bus.js.update_stream(config)
    try:
        before = (await bus.js.stream_info(gateway.settings.stream_name)).state.messages
        codes = await asyncio.gather(*(send(c, update(c, k)) for k in range(5) for c in clients))
        assert set(codes) == {469}, codes
        assert (await bus.js.stream_info(gateway.settings.stream_name)).state.messages == before  # nothing stored
    finally:
        config.subjects = every_subject
        await bus.js.update_stream(config)
    # The VENs re-send: now stored, once each.
    codes = await asyncio.gather(*(send(c, update(c, k)) for k in range(5) for c in clients))
    assert set(codes) == {200}
    for client in clients:
        facts = await bus.stored(bus.subjects.report_data(client.ven_id))
        assert len(facts) == 5 and len({f["id"] for f in facts}) == 5  # none half-stored before


async def test_readings_are_not_acknowledged_without_nats(gateway, bus, vens):
    client = await reporting_ven(vens, gateway, "nats-gone")
    await gateway.nc.close()  # as if NATS went away for good
    assert await send(client, update(client, 1)) == 469
    assert await bus.stored(bus.subjects.report_data(client.ven_id)) == []


async def test_an_ack_that_never_comes_is_an_error_not_an_ok(gateway, bus, vens, monkeypatch):
    """JetStream that stores nothing and never answers (e.g. the publish was lost in a reconnect):
    the VEN is answered 469 once the ack is overdue."""
    client = await reporting_ven(vens, gateway, "no-ack")
    publisher = gateway.publisher
    monkeypatch.setattr(publisher.acks, "timeout", 0.3)

    async def swallowed(subject, payload, reply="", headers=None):
        return None  # the message never reaches the server

    monkeypatch.setattr(publisher.nc, "publish", swallowed)
    assert await send(client, update(client, 1)) == 469
    monkeypatch.undo()
    assert await send(client, update(client, 1)) == 200
    [fact] = await bus.stored(bus.subjects.report_data(client.ven_id))
    assert len(fact["readings"]) == 10
