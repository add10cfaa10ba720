"""Registration: KV record + name index + fact on JetStream, stable ven_id, restart- and replica-safe."""

from __future__ import annotations

import re

from openleadr.messaging import create_message

from adrstack.gateway.app import Gateway
from adrstack.shared import kv_keys
from adrstack.shared.messages import utcnow
from tests.helpers import eventually


async def register(client):
    await client.create_party_registration(ven_id=client.ven_id)
    assert client.ven_id and client.registration_id, "the VTN did not register the VEN"
    return client


async def test_registration_stores_the_ven_and_publishes_the_fact(gateway, bus, vens):
    client = await register(vens("building-1", gateway.vtn_url))
    assert re.fullmatch(r"ven-[0-9a-f]{12}", client.ven_id)
    assert client.poll_frequency.total_seconds() == gateway.settings.poll_interval

    fact = await bus.last(bus.subjects.ven_registered(client.ven_id))
    assert fact is not None, "VenRegistered not in the stream"
    assert fact["ven_name"] == "building-1" and fact["registration_id"] == client.registration_id
    assert fact["reregistration"] is False

    record = await bus.kv_json(kv_keys.ven_key(client.ven_id))
    assert record["ven_name"] == "building-1" and record["registration_id"] == client.registration_id
    index = await bus.vens.get(kv_keys.ven_name_key("building-1"))
    assert index.value.decode() == client.ven_id


async def test_same_name_registering_again_keeps_ven_id_and_registration_id(gateway, bus, vens):
    first = await register(vens("same-name", gateway.vtn_url))
    again = await register(vens("same-name", gateway.vtn_url))
    other = await register(vens("other-name", gateway.vtn_url))
    assert again.ven_id == first.ven_id
    assert again.registration_id == first.registration_id
    assert other.ven_id != first.ven_id
    facts = await bus.stored(bus.subjects.ven_registered(first.ven_id))
    assert [f["reregistration"] for f in facts] == [False, True]


async def test_full_client_run_registers_and_polls(gateway_settings, bus, vens):
    # An hour between heartbeats, so that no heartbeat window ends during the test.
    gateway = Gateway(gateway_settings.model_copy(update={"seen_interval": 3600}))
    await gateway.start()
    try:
        client = vens("auto-ven", gateway.vtn_url)
        await client.run()
        assert client.registration_id
        # The first poll is a heartbeat: one VenSeen, and no second one within seen_interval.
        seen = await eventually(lambda: bus.stored(bus.subjects.seen(client.ven_id)), 10, message="VenSeen")
        assert len(seen) == 1
        await client.poll()
        await client.poll()
        assert len(await bus.stored(bus.subjects.seen(client.ven_id))) == 1
    finally:
        await client.stop()
        await gateway.stop()


async def test_cancel_registration_publishes_and_removes(gateway, bus, vens):
    client = await register(vens("leaving", gateway.vtn_url))
    ven_id, registration_id = client.ven_id, client.registration_id
    await client.cancel_party_registration()
    assert client.registration_id is None, "the VTN did not confirm the cancellation"
    fact = await bus.last(bus.subjects.ven_deregistered(ven_id))
    assert fact["registration_id"] == registration_id
    assert await bus.kv_json(kv_keys.ven_key(ven_id)) is None
    # A deregistered VEN that polls is asked to register again.
    response_type, _ = await client.poll()
    assert response_type == "oadrRequestReregistration"


async def test_restart_does_not_make_vens_register_again(gateway_settings, bus, vens):
    first = Gateway(gateway_settings)
    await first.start()
    try:
        client = await register(vens("survivor", first.vtn_url))
    finally:
        await first.stop()
    second = Gateway(gateway_settings)
    await second.start()
    try:
        response_type, payload = await client.poll()
        assert response_type == "oadrResponse", (response_type, payload)
        assert payload["response"]["response_code"] == 200
    finally:
        await second.stop()


async def test_two_replicas_serve_the_same_vens(gateway_settings, bus, vens):
    a = Gateway(gateway_settings)
    b = Gateway(gateway_settings.model_copy(update={"vtn_port": 0}))
    await a.start()
    await b.start()
    try:
        via_a = await register(vens("replicated", a.vtn_url))
        via_b = vens("replicated", b.vtn_url, ven_id=via_a.ven_id)
        response_type, payload = await via_b.poll()
        assert response_type == "oadrResponse" and payload["response"]["response_code"] == 200
        again = await register(vens("replicated", b.vtn_url))
        assert (again.ven_id, again.registration_id) == (via_a.ven_id, via_a.registration_id)
    finally:
        await a.stop()
        await b.stop()


async def test_unknown_ven_gets_an_openadr_error(gateway, vens):
    stranger = vens("stranger", gateway.vtn_url, ven_id="ven-000000000000")
    response_type, payload = await stranger.request_event()
    assert response_type == "oadrDistributeEvent"
    assert payload["response"]["response_code"] == 452
    response_type, _ = await stranger.poll()
    assert response_type == "oadrRequestReregistration"
    update = create_message("oadrUpdateReport", ven_id=stranger.ven_id, request_id="u", reports=[{
        "report_request_id": "rr", "report_specifier_id": "s", "report_name": "TELEMETRY_USAGE",
        "created_date_time": utcnow(), "intervals": [{"dtstart": utcnow(), "report_payload": {"r_id": "p", "value": 1}}]}])
    response_type, payload = await stranger._perform_request("EiReport", update)
    # 2.0b answers an oadrUpdateReport with oadrUpdatedReport, errors included.
    assert response_type == "oadrUpdatedReport" and payload["response"]["response_code"] == 452
    assert "unknown venID" in payload["response"]["response_description"]
