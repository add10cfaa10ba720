"""Operators' report requests and cancellations from the VEN side (R1_3040/3045/3050, R1_3130/3140):
commands over NATS to a real gateway, the VEN's messages sent as it chooses (openleadr only builds
and parses the XML), every step published as a ReportRequestChanged fact."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from openleadr.messaging import create_message

from adrstack.shared.messages import CancelReportCommand, RequestReportCommand
from tests.helpers import eventually
from tests.integration.gateway.test_reports import add_usage_report

AT = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


async def command(bus, verb: str, message) -> dict:
    reply = await bus.nc.request(bus.subjects.cmd_report(verb), message.to_bytes(), timeout=5)
    return json.loads(reply.data)


async def registered_reporter(vens, gateway, name: str):
    """A VEN that registered a TELEMETRY_USAGE report and acknowledged the request the VTN made of it."""
    client = vens(name, gateway.vtn_url)
    add_usage_report(client)
    await client.create_party_registration()
    # The automatic request rides in the oadrRegisteredReport (R1_3060); openleadr acknowledges it
    # with an oadrCreatedReport of its own.
    await client.register_reports(client.reports)
    assert [r["report_specifier_id"] for r in client.report_requests] == ["usage-1"]
    # The VTN's own METADATA comes next (N1_0020); then the VEN has nothing queued.
    assert (await client.poll())[0] == "oadrRegisterReport"
    assert (await client.poll())[0] == "oadrResponse"
    return client


async def created(client, request_id: str, pending: list[str], code: int = 200) -> None:
    response_type, payload = await client._perform_request("EiReport", create_message(
        "oadrCreatedReport", ven_id=client.ven_id, pending_reports=[{"report_request_id": i} for i in pending],
        response={"response_code": code, "response_description": "OK" if code == 200 else "ERROR",
                  "request_id": request_id}))
    assert response_type == "oadrResponse" and payload["response"]["response_code"] == 200, payload


async def canceled(client, request_id: str, pending: list[str] = ()) -> None:
    response_type, payload = await client._perform_request("EiReport", create_message(
        "oadrCanceledReport", ven_id=client.ven_id, pending_reports=[{"report_request_id": i} for i in pending],
        response={"response_code": 200, "response_description": "OK", "request_id": request_id}))
    assert response_type == "oadrResponse" and payload["response"]["response_code"] == 200, payload


async def update(client, report_request_id: str, value: float = 1.0) -> tuple[str, dict]:
    return await client._perform_request("EiReport", create_message(
        "oadrUpdateReport", ven_id=client.ven_id, request_id=f"upd-{value}", reports=[{
            "report_id": f"rep-{value}", "report_request_id": report_request_id, "report_specifier_id": "usage-1",
            "report_name": "TELEMETRY_USAGE", "created_date_time": AT,
            "intervals": [{"dtstart": AT + timedelta(seconds=value),
                           "report_payload": {"r_id": "power-1", "value": value}}]}]))


async def steps(bus, ven_id: str, report_request_id: str) -> list[str]:
    facts = await bus.stored(bus.subjects.report_request(ven_id))
    mine = sorted((f["request"] for f in facts if f["request"]["report_request_id"] == report_request_id),
                  key=lambda r: r["version"])
    return [r["status"] for r in mine]


async def requested(bus, client, **changes) -> str:
    reply = await command(bus, "request", RequestReportCommand(
        ven_id=client.ven_id, report_specifier_id="usage-1", r_ids=["power-1"], **changes))
    assert reply["ok"], reply
    assert reply["request"]["status"] == "queued" and reply["request"]["origin"] == "operator"
    response_type, payload = await client.poll()
    assert response_type == "oadrCreateReport", response_type
    [request] = payload["report_requests"]
    assert request["report_request_id"] == reply["request"]["report_request_id"]
    await created(client, payload["request_id"], [request["report_request_id"]])
    return request["report_request_id"]


async def test_a_requested_report_goes_out_on_a_poll_and_is_acknowledged(gateway, bus, vens):
    client = await registered_reporter(vens, gateway, "asked")
    reply = await command(bus, "request", RequestReportCommand(
        ven_id=client.ven_id, report_specifier_id="usage-1", r_ids=["power-1"], granularity=timedelta(seconds=1),
        report_back_duration=timedelta(seconds=5), end=AT))
    assert reply["ok"], reply
    request_id = reply["request"]["report_request_id"]
    response_type, payload = await client.poll()
    assert response_type == "oadrCreateReport", response_type
    [request] = payload["report_requests"]
    specifier = request["report_specifier"]
    assert request["report_request_id"] == request_id and request_id not in ("", "0")
    assert specifier["granularity"] == timedelta(seconds=1)
    assert specifier["report_back_duration"] == timedelta(seconds=5)
    assert specifier["specifier_payloads"] == [{"r_id": "power-1", "reading_type": "x-notApplicable"}]
    interval = specifier["report_interval"]
    assert interval["dtstart"] + interval["duration"] == AT
    assert (await client.poll())[0] == "oadrResponse"  # sent once

    await created(client, payload["request_id"], [request_id])
    assert await eventually(lambda: steps(bus, client.ven_id, request_id), message="facts") is not None
    await eventually(lambda: _equal(steps(bus, client.ven_id, request_id), ["queued", "sent", "acknowledged"]),
                     message="queued, sent, acknowledged")
    answer, payload = await update(client, request_id, 3.0)
    assert payload["response"]["response_code"] == 200 and "cancel_report" not in payload


async def test_a_refused_create_report_fails_the_request(gateway, bus, vens):
    client = await registered_reporter(vens, gateway, "refuser")
    reply = await command(bus, "request", RequestReportCommand(
        ven_id=client.ven_id, report_specifier_id="usage-1", r_ids=["power-1"]))
    request_id = reply["request"]["report_request_id"]
    _, payload = await client.poll()
    await created(client, payload["request_id"], [], code=452)
    await eventually(lambda: _equal(steps(bus, client.ven_id, request_id), ["queued", "sent", "failed"]),
                     message="failed")


async def test_a_cancel_piggybacks_on_the_next_update_and_names_the_delivered_request(gateway, bus, vens):
    """R1_3050: the oadrCancelReport in oadrUpdatedReport names the request delivered to the VEN;
    reportToFollow=false: no update is accepted for it once the VEN has cancelled it (R1_3040)."""
    client = await registered_reporter(vens, gateway, "piggyback")
    request_id = await requested(bus, client, granularity=timedelta(seconds=1))
    reply = await command(bus, "cancel", CancelReportCommand(ven_id=client.ven_id, report_request_id=request_id))
    assert reply["ok"] and reply["request"]["status"] == "cancelling", reply

    response_type, payload = await update(client, request_id, 1.0)
    assert response_type == "oadrUpdatedReport" and payload["response"]["response_code"] == 200, payload
    cancel = payload["cancel_report"]
    assert cancel["report_request_id"] == request_id and cancel["report_to_follow"] is False
    _, payload = await update(client, request_id, 1.5)
    assert "cancel_report" not in payload  # piggybacked once

    await canceled(client, cancel["request_id"])
    # Answered: not sent again on the poll (which it would be for a VEN that ignored the piggyback).
    assert (await client.poll())[0] == "oadrResponse"
    await eventually(lambda: _equal(steps(bus, client.ven_id, request_id),
                                    ["queued", "sent", "acknowledged", "cancelling", "cancelling", "cancelled"]),
                     message="cancelled")
    _, refused = await update(client, request_id, 2.0)
    assert refused["response"]["response_code"] == 452, refused
    data = await bus.stored(bus.subjects.report_data(client.ven_id))
    assert sorted(r["value"] for d in data for r in d["readings"]) == [1.0, 1.5]
    # Cancelling again changes nothing and answers the state.
    again = await command(bus, "cancel", CancelReportCommand(ven_id=client.ven_id, report_request_id=request_id))
    assert again["ok"] and again["request"]["status"] == "cancelled"


async def test_a_piggybacked_cancel_the_ven_ignored_goes_out_on_its_next_poll(gateway, bus, vens):
    client = await registered_reporter(vens, gateway, "deaf")
    request_id = await requested(bus, client)
    await command(bus, "cancel", CancelReportCommand(ven_id=client.ven_id, report_request_id=request_id))
    _, payload = await update(client, request_id, 1.0)
    assert payload["cancel_report"]["report_request_id"] == request_id
    response_type, payload = await client.poll()
    assert response_type == "oadrCancelReport" and payload["report_request_id"] == request_id
    assert (await client.poll())[0] == "oadrResponse"
    await canceled(client, payload["request_id"])
    await eventually(lambda: _last(steps(bus, client.ven_id, request_id), "cancelled"), message="cancelled")


async def test_a_cancel_with_report_to_follow_goes_out_on_a_poll_and_allows_one_final_update(gateway, bus, vens):
    """R1_3045: oadrCancelReport via poll with reportToFollow=true; one final update is accepted."""
    client = await registered_reporter(vens, gateway, "follower")
    request_id = await requested(bus, client)
    reply = await command(bus, "cancel", CancelReportCommand(ven_id=client.ven_id, report_request_id=request_id,
                                                             report_to_follow=True))
    assert reply["ok"] and reply["request"]["report_to_follow"] is True
    response_type, payload = await client.poll()
    assert response_type == "oadrCancelReport", response_type
    assert payload["report_request_id"] == request_id and payload["report_to_follow"] is True
    await canceled(client, payload["request_id"], [request_id])
    await eventually(lambda: _last(steps(bus, client.ven_id, request_id), "cancelled"), message="cancelled")

    _, final = await update(client, request_id, 5.0)
    assert final["response"]["response_code"] == 200, final
    _, refused = await update(client, request_id, 6.0)
    assert refused["response"]["response_code"] == 452, refused
    data = await bus.stored(bus.subjects.report_data(client.ven_id))
    assert [r["value"] for d in data for r in d["readings"]] == [5.0]


async def test_a_request_cancelled_before_it_was_sent_never_reaches_the_ven(gateway, bus, vens):
    client = await registered_reporter(vens, gateway, "too-late")
    reply = await command(bus, "request", RequestReportCommand(
        ven_id=client.ven_id, report_specifier_id="usage-1", r_ids=["power-1"]))
    request_id = reply["request"]["report_request_id"]
    reply = await command(bus, "cancel", CancelReportCommand(ven_id=client.ven_id, report_request_id=request_id))
    assert reply["request"]["status"] == "cancelled" and reply["request"]["sent_at"] is None
    assert (await client.poll())[0] == "oadrResponse"


async def test_requests_the_ven_cannot_carry_out_are_refused_naming_the_field(gateway, bus, vens):
    client = await registered_reporter(vens, gateway, "strict")

    async def refusal(**fields) -> tuple[str, str]:
        base = {"ven_id": client.ven_id, "report_specifier_id": "usage-1", "r_ids": ["power-1"]}
        reply = await command(bus, "request", RequestReportCommand(**{**base, **fields}))
        assert not reply["ok"], reply
        return reply["error"]["code"], reply["error"]["field"]

    assert await refusal(ven_id="ven-nobody") == ("not_found", "ven_id")
    assert await refusal(report_specifier_id="nope") == ("invalid", "report_specifier_id")
    assert await refusal(r_ids=["power-1", "made-up"]) == ("invalid", "r_ids[1]")
    # The data point samples every second exactly (min = max = 1 s).
    assert await refusal(granularity=timedelta(seconds=2)) == ("invalid", "granularity")
    assert await refusal(granularity=timedelta(milliseconds=1500)) == ("invalid", "granularity")
    assert await refusal(report_back_duration=timedelta(0), granularity=timedelta(seconds=1),
                         end=AT - timedelta(days=3650)) == ("invalid", "end")
    unknown = await command(bus, "cancel", CancelReportCommand(ven_id=client.ven_id, report_request_id="rr-none"))
    assert unknown["error"]["code"] == "not_found" and unknown["error"]["field"] == "report_request_id"
    garbage = json.loads((await bus.nc.request(bus.subjects.cmd_report("request"), b"{not json",
                                               timeout=5)).data)
    assert garbage["ok"] is False and garbage["error"]["code"] == "invalid"


async def _equal(probe, expected):
    got = await probe
    assert got == expected, got
    return True


async def _last(probe, status):
    got = await probe
    assert got and got[-1] == status, got
    return True
