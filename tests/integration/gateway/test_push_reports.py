"""Push VENs get their EiReport messages pushed too: the VTN's metadata, an operator's report
request and its cancellation are POSTed to <address>/EiReport of a small aiohttp server playing the
VEN (openleadr's VEN has no push server), and the VEN's answers move the requests along."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from openleadr.messaging import create_message, parse_message

from adrstack.shared.messages import CancelReportCommand, RequestReportCommand
from tests.helpers import eventually
from tests.integration.gateway.push_ven import PushVen
from tests.integration.gateway.test_push import register_push
from tests.integration.gateway.test_report_requests import _equal, command, steps
from tests.integration.gateway.test_reports import add_usage_report

ANSWERS = {"oadrCreateReport": "oadrCreatedReport", "oadrCancelReport": "oadrCanceledReport",
           "oadrRegisterReport": "oadrRegisteredReport"}


class ReportPushVen(PushVen):
    """The VEN's EiReport endpoint: records what is POSTed as (status, message type, payload),
    answers with ``statuses`` in turn (then 200) and, on 200, with the 2.0b answer to the message
    (its requests listed as pending)."""

    SERVICE = "EiReport"

    def delivered(self, message_type: str) -> list[dict]:  # type: ignore[override]
        return [p for status, t, p in self.requests if status == 200 and t == message_type]

    async def handle(self, request: web.Request) -> web.Response:
        message_type, payload = parse_message((await request.read()).decode())
        status = self.statuses.pop(0) if self.statuses else 200
        self.requests.append((status, message_type, payload))
        if status != 200:
            return web.Response(status=status, text="not now")
        response = {"response_code": 200, "response_description": "OK", "request_id": payload["request_id"]}
        if message_type == "oadrCreateReport":
            answer = create_message("oadrCreatedReport", ven_id=self.ven_id, response=response, pending_reports=[
                {"report_request_id": r["report_request_id"]} for r in payload["report_requests"]])
        elif message_type == "oadrCancelReport":
            answer = create_message("oadrCanceledReport", ven_id=self.ven_id, response=response, pending_reports=[])
        else:
            answer = create_message(ANSWERS[message_type], ven_id=self.ven_id, response=response)
        return web.Response(body=answer.encode(), content_type="application/xml")


async def push_reporter(vens, gateway, push_ven, name: str, **kwargs):
    ven, address = await push_ven(ReportPushVen, **kwargs)
    client = await register_push(vens, name, gateway.vtn_url, address)
    ven.ven_id = client.ven_id
    add_usage_report(client)
    await client.register_reports(client.reports)  # the automatic request rides in the answer (R1_3060)
    return ven, client


async def test_metadata_a_request_and_its_cancellation_are_pushed_and_answered(fast_gateway, bus, vens,
                                                                               push_ven):
    ven, client = await push_reporter(vens, fast_gateway, push_ven, "report-pusher")
    # The VTN's own METADATA (N1_0020) is pushed, as a poll would have been answered.
    await eventually(lambda: ven.delivered("oadrRegisterReport"), 10, message="VTN metadata pushed")

    reply = await command(bus, "request", RequestReportCommand(
        ven_id=client.ven_id, report_specifier_id="usage-1", r_ids=["power-1"], granularity=timedelta(seconds=1),
        report_back_duration=timedelta(seconds=5)))
    assert reply["ok"], reply
    request_id = reply["request"]["report_request_id"]
    [pushed] = await eventually(lambda: ven.delivered("oadrCreateReport"), 10, message="request pushed")
    assert [r["report_request_id"] for r in pushed["report_requests"]] == [request_id]
    await eventually(lambda: _equal(steps(bus, client.ven_id, request_id), ["queued", "sent", "acknowledged"]),
                     10, message="acknowledged through the pushed answer")

    reply = await command(bus, "cancel", CancelReportCommand(ven_id=client.ven_id, report_request_id=request_id))
    assert reply["ok"], reply
    [cancel] = await eventually(lambda: ven.delivered("oadrCancelReport"), 10, message="cancellation pushed")
    assert cancel["report_request_id"] in (request_id, [request_id])
    await eventually(lambda: _ends_with(steps(bus, client.ven_id, request_id), "cancelled"), 10,
                     message="cancelled through the pushed answer")
    assert len(ven.delivered("oadrCreateReport")) == 1 and len(ven.delivered("oadrRegisterReport")) == 1


async def test_a_report_push_that_fails_is_put_back_and_retried(fast_gateway, bus, vens, push_ven):
    ven, client = await push_reporter(vens, fast_gateway, push_ven, "flaky-reporter")
    await eventually(lambda: ven.delivered("oadrRegisterReport"), 10, message="VTN metadata pushed")
    ven.statuses = [503, 503]
    reply = await command(bus, "request", RequestReportCommand(
        ven_id=client.ven_id, report_specifier_id="usage-1", r_ids=["power-1"]))
    request_id = reply["request"]["report_request_id"]
    await eventually(lambda: ven.delivered("oadrCreateReport"), 10, message="pushed after two failures")
    refused = [p for status, t, p in ven.requests if t == "oadrCreateReport" and status != 200]
    assert len(refused) == 2
    await eventually(lambda: _ends_with(steps(bus, client.ven_id, request_id), "acknowledged"), 10,
                     message="acknowledged")
    # Each failed send was taken back: the request was queued again before the next attempt.
    assert await steps(bus, client.ven_id, request_id) == ["queued", "sent", "queued", "sent", "queued", "sent",
                                                           "acknowledged"]
    assert len(ven.delivered("oadrCreateReport")) == 1


async def _ends_with(read, last: str) -> bool:
    got = await read
    return bool(got) and got[-1] == last
