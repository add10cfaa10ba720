"""When JetStream cannot store a fact, the VEN is never told that it was received."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
from openleadr.messaging import create_message

from adrstack.shared import jetstream, kv_keys
from adrstack.shared.messages import DrEvent, EventInterval, EventStatus, EventTargets, utcnow
from tests.helpers import eventually

from .test_report_ingest import issued
from .test_reports import add_usage_report


async def test_nothing_is_acknowledged_while_the_stream_is_gone(gateway, bus, vens):
    client = vens("unlucky", gateway.vtn_url)
    add_usage_report(client)
    await client.create_party_registration()
    await client.register_reports(client.reports)
    event = DrEvent(event_id="evt-lost", status=EventStatus.FAR, start_at=utcnow() + timedelta(hours=1),
                    intervals=[EventInterval(duration=timedelta(hours=1), payload=1)],
                    targets=EventTargets(ven_ids=[client.ven_id]))
    await bus.events.put(kv_keys.event_key(event.event_id), event.model_dump_json().encode())
    await eventually(lambda: gateway.events.get("evt-lost"), 5, message="event mirrored")

    await bus.js.delete_stream(gateway.settings.stream_name)

    # Opt response: an OpenADR error, not an OK.
    opt = create_message("oadrCreatedEvent", ven_id=client.ven_id,
                         response={"response_code": 200, "response_description": "OK", "request_id": "r"},
                         event_responses=[{"response_code": 200, "response_description": "OK", "request_id": "r",
                                           "event_id": "evt-lost", "modification_number": 0, "opt_type": "optIn"}])
    response_type, payload = await client._perform_request("EiEvent", opt)
    assert response_type == "oadrResponse" and payload["response"]["response_code"] == 469, payload

    # Report data: not oadrUpdatedReport.
    update = create_message("oadrUpdateReport", ven_id=client.ven_id, request_id="u-1", reports=[{
        "report_request_id": issued(client), "report_specifier_id": "usage-1", "report_name": "TELEMETRY_USAGE",
        "created_date_time": utcnow(),
        "intervals": [{"dtstart": utcnow(), "report_payload": {"r_id": "power-1", "value": 1.5}}]}])
    response_type, payload = await client._perform_request("EiReport", update)
    assert response_type == "oadrUpdatedReport" and payload["response"]["response_code"] == 469, payload

    # Report registration and party registration: errors too.
    response_type, payload = await client._perform_request("EiReport", create_message(
        "oadrRegisterReport", request_id="r2", ven_id=client.ven_id, reports=client.reports, report_request_id=0))
    assert response_type == "oadrRegisteredReport" and payload["response"]["response_code"] == 469
    newcomer = vens("newcomer", gateway.vtn_url)
    await newcomer.create_party_registration()
    assert newcomer.registration_id is None and newcomer.ven_id is None

    # Once the stream is back, the same messages succeed.
    await jetstream.ensure_stream(bus.js, gateway.settings)
    response_type, payload = await client._perform_request("EiEvent", opt)
    assert payload["response"]["response_code"] == 200
    response_type, payload = await client._perform_request("EiReport", update)
    assert response_type == "oadrUpdatedReport"
    [opt_fact] = await bus.stored(bus.subjects.opt(client.ven_id))
    assert opt_fact["opt_type"] == "optIn"
    [data] = await bus.stored(bus.subjects.report_data(client.ven_id))
    assert data["readings"][0]["value"] == 1.5 and data["readings"][0]["unit"] == "W"


async def test_nats_unreachable_health_and_errors(gateway, vens):
    client = vens("cut-off", gateway.vtn_url)
    await client.create_party_registration()
    assert client.ven_id
    await gateway.nc.close()  # as if NATS went away for good

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{gateway.port}/health") as r:
            assert r.status == 503
    # An idle poll stores nothing and needs nothing from NATS: it is still answered from memory.
    response_type, payload = await client.poll()
    assert response_type == "oadrResponse" and payload["response"]["response_code"] == 200
    # Anything that must be stored is refused with 469 (the VEN retries), never acknowledged.
    response_type, payload = await client.request_event()
    assert payload["response"]["response_code"] in (200, 469)
    again = vens("cut-off-2", gateway.vtn_url)
    await again.create_party_registration()
    assert again.registration_id is None
