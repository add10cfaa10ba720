"""requestReport / cancelReport / reportRequests end to end: GraphQL -> a real gateway -> a real VEN
(openleadr, or messages sent as the test chooses) -> facts -> telemetry -> Postgres -> GraphQL."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from openleadr import OpenADRClient
from openleadr.messaging import create_message

from adrstack.gateway.app import Gateway
from adrstack.gateway.settings import GatewaySettings
from adrstack.telemetry.consumer import TelemetryConsumer
from adrstack.telemetry.settings import TelemetrySettings
from tests.helpers import eventually
from tests.integration.gateway.test_reports import add_usage_report

from .helpers import gql

REQUEST = """mutation($v: String!, $s: String!, $r: [String!]!, $g: String, $b: String, $start: DateTime,
                      $end: DateTime, $k: String) {
  requestReport(venId: $v, reportSpecifierId: $s, rIds: $r, granularity: $g, reportBackDuration: $b,
                start: $start, end: $end, idempotencyKey: $k) {
    reportRequestId reportName status origin granularity reportBackDuration start end rIds
  }
}"""
CANCEL = """mutation($v: String!, $id: String!, $follow: Boolean) {
  cancelReport(venId: $v, reportRequestId: $id, reportToFollow: $follow) { reportRequestId status reportToFollow }
}"""
REQUESTS = """query($v: String!) {
  reportRequests(venId: $v) {
    reportRequestId reportName origin status reportToFollow createdAt sentAt acknowledgedAt cancelRequestedAt
    cancelSentAt cancelledAt failedAt
  }
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def gateway(api_settings):
    gw = Gateway(GatewaySettings(**api_settings.model_dump(), vtn_host="127.0.0.1", vtn_port=free_port(),
                                 poll_interval=1.0, report_interval=1.0))
    await gw.start()
    consumer = TelemetryConsumer(TelemetrySettings(**api_settings.model_dump(), fetch_timeout=0.5))
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield gw
    finally:
        stop.set()
        with contextlib.suppress(BaseException):
            await task
        await consumer.stop()
        await gw.stop()


@pytest.fixture
async def ven_clients():
    made: list[OpenADRClient] = []

    def make(name: str, url: str) -> OpenADRClient:
        made.append(OpenADRClient(ven_name=name, vtn_url=url))
        return made[-1]

    yield make
    for client in made:
        with contextlib.suppress(Exception):
            await client.stop()
        if client.client_session is not None and not client.client_session.closed:
            await client.client_session.close()


async def request_of(client, ven_id: str, report_request_id: str, status: str) -> dict | None:
    data = await gql(client, REQUESTS, {"v": ven_id})
    found = [r for r in data["data"]["reportRequests"] if r["reportRequestId"] == report_request_id]
    assert found and found[0]["status"] == status, found
    return found[0]


async def readings_after(database_url: str, ven_id: str, after: datetime) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("select count(*) from readings where ven_id = %s and received_at > %s",
                                 (ven_id, after))
        return (await cur.fetchone())[0]


def fields(data: dict) -> list[tuple[str, str]]:
    return [(e["extensions"]["code"], e["extensions"]["field"]) for e in data["errors"]]


async def test_an_operator_requests_a_report_the_ven_sends_it_and_stops_when_cancelled(
        client, gateway, ven_clients, api_settings):
    ven = ven_clients("metered", gateway.vtn_url)
    add_usage_report(ven)
    await ven.run()
    ven_id = ven.ven_id

    # The request made when the VEN registered its report is listed too, and can be cancelled.
    automatic = await eventually(lambda: _one(client, ven_id, origin="automatic", status="acknowledged"), 20,
                                 message="the automatic request acknowledged")
    data = await gql(client, CANCEL, {"v": ven_id, "id": automatic["reportRequestId"]})
    assert data["data"]["cancelReport"]["status"] == "cancelling", data
    await eventually(lambda: request_of(client, ven_id, automatic["reportRequestId"], "cancelled"), 20,
                     message="the automatic request cancelled")
    assert not any(r["report_request_id"] == automatic["reportRequestId"] for r in ven.report_requests)

    data = await gql(client, REQUEST, {"v": ven_id, "s": "usage-1", "r": ["power-1"], "g": "PT1S", "b": "PT2S",
                                       "k": "ask-1"})
    asked = data["data"]["requestReport"]
    assert asked["status"] == "queued" and asked["origin"] == "operator", data
    assert (asked["granularity"], asked["reportBackDuration"], asked["rIds"]) == ("PT1S", "PT2S", ["power-1"])
    assert asked["reportName"] == "TELEMETRY_USAGE" and asked["start"] and asked["end"] is None
    # The same idempotency key again: the same request, not a second one.
    again = await gql(client, REQUEST, {"v": ven_id, "s": "usage-1", "r": ["power-1"], "g": "PT1S", "b": "PT2S",
                                        "k": "ask-1"})
    assert again["data"]["requestReport"]["reportRequestId"] == asked["reportRequestId"]
    request_id = asked["reportRequestId"]

    await eventually(lambda: any(r["report_request_id"] == request_id for r in ven.report_requests), 20,
                     message="the VEN received the request on a poll")
    acknowledged = await eventually(lambda: request_of(client, ven_id, request_id, "acknowledged"), 20,
                                    message="acknowledged")
    since = datetime.fromisoformat(acknowledged["acknowledgedAt"])
    await eventually(lambda: readings_after(api_settings.database_url, ven_id, since), 20,
                     message="readings of the requested report in Postgres")

    data = await gql(client, CANCEL, {"v": ven_id, "id": request_id, "follow": True})
    assert data["data"]["cancelReport"] == {"reportRequestId": request_id, "status": "cancelling",
                                            "reportToFollow": True}, data
    done = await eventually(lambda: request_of(client, ven_id, request_id, "cancelled"), 20, message="cancelled")
    # The VEN stopped: the request and its reporting job are gone from it.
    assert not any(r["report_request_id"] == request_id for r in ven.report_requests)
    assert not [job for job in ven.scheduler.get_jobs() if "update_report" in repr(job.func)]
    times = [datetime.fromisoformat(done[k]) for k in ("createdAt", "sentAt", "acknowledgedAt",
                                                        "cancelRequestedAt", "cancelSentAt", "cancelledAt")]
    assert times == sorted(times), done
    assert done["failedAt"] is None and done["reportToFollow"] is True


async def _one(client, ven_id: str, origin: str, status: str) -> dict:
    data = await gql(client, REQUESTS, {"v": ven_id})
    found = [r for r in data["data"]["reportRequests"] if r["origin"] == origin]
    assert len(found) == 1 and found[0]["status"] == status, data
    return found[0]


HISTORY_START = datetime(2030, 2, 1, 0, 0, tzinfo=timezone.utc)


def history_registration(ven_id: str) -> str:
    return create_message("oadrRegisterReport", request_id="reg-h", ven_id=ven_id, report_request_id="0", reports=[{
        "report_specifier_id": "hist-1", "report_name": "METADATA_HISTORY_USAGE", "report_request_id": "0",
        "created_date_time": HISTORY_START, "duration": timedelta(days=1),
        "report_descriptions": [{
            "r_id": "energy-1", "report_data_source": {"resource_id": "meter-h"}, "report_type": "usage",
            "reading_type": "Direct Read", "market_context": "http://market.example",
            "measurement": {"name": "energyReal", "description": "RealEnergy", "unit": "Wh", "scale": "none"},
            "sampling_rate": {"min_period": timedelta(minutes=15), "max_period": timedelta(minutes=15),
                              "on_change": False}}]}])


async def test_history_usage_is_requested_over_an_interval_and_stored_like_telemetry(
        client, gateway, ven_clients, api_settings):
    """R1_3130/3140: granularity and reportBackDuration 0, a reportInterval; the VEN registered a
    METADATA_HISTORY_USAGE report and answers with oadrUpdateReport of past readings."""
    ven = ven_clients("historian", gateway.vtn_url)  # openleadr only carries and parses the messages
    await ven.create_party_registration()
    ven_id = ven.ven_id
    response_type, payload = await ven._perform_request("EiReport", history_registration(ven_id))
    assert response_type == "oadrRegisteredReport" and payload["response"]["response_code"] == 200, payload
    end = HISTORY_START + timedelta(hours=1)
    base = {"v": ven_id, "s": "hist-1", "r": ["energy-1"], "start": HISTORY_START.isoformat(),
            "end": end.isoformat()}

    assert fields(await gql(client, REQUEST, {**base, "g": "PT15M"})) == [("INVALID", "granularity")]
    assert fields(await gql(client, REQUEST, {**base, "start": None})) == [("INVALID", "start")]
    assert fields(await gql(client, REQUEST, {**base, "s": "nope"})) == [("INVALID", "reportSpecifierId")]
    assert fields(await gql(client, REQUEST, {**base, "r": ["energy-1", "x"]})) == [("INVALID", "rIds[1]")]
    assert fields(await gql(client, REQUEST, {**base, "g": "soon"})) == [("INVALID", "granularity")]
    assert fields(await gql(client, REQUEST, {**base, "v": "ven-nobody"})) == [("NOT_FOUND", "venId")]
    assert fields(await gql(client, REQUESTS, {"v": "ven-nobody"})) == [("NOT_FOUND", "venId")]

    data = await gql(client, REQUEST, base)
    asked = data["data"]["requestReport"]
    assert asked["reportName"] == "HISTORY_USAGE" and asked["status"] == "queued", data
    assert (asked["granularity"], asked["reportBackDuration"]) == ("PT0S", "PT0S")
    assert (asked["start"], asked["end"]) == ("2030-02-01T00:00:00+00:00", "2030-02-01T01:00:00+00:00")
    request_id = asked["reportRequestId"]

    response_type, payload = await ven.poll()
    assert response_type == "oadrCreateReport", response_type
    [request] = payload["report_requests"]
    specifier = request["report_specifier"]
    assert request["report_request_id"] == request_id
    assert specifier["granularity"] == timedelta(0) and specifier["report_back_duration"] == timedelta(0)
    assert specifier["report_interval"] == {"dtstart": HISTORY_START, "duration": timedelta(hours=1)}
    response_type, _ = await ven._perform_request("EiReport", create_message(
        "oadrCreatedReport", ven_id=ven_id, pending_reports=[{"report_request_id": request_id}],
        response={"response_code": 200, "response_description": "OK", "request_id": payload["request_id"]}))
    await eventually(lambda: request_of(client, ven_id, request_id, "acknowledged"), 20, message="acknowledged")

    intervals = [{"dtstart": HISTORY_START + timedelta(minutes=15 * i),
                  "report_payload": {"r_id": "energy-1", "value": 100.0 + i}} for i in range(4)]
    response_type, payload = await ven._perform_request("EiReport", create_message(
        "oadrUpdateReport", ven_id=ven_id, request_id="upd-h", reports=[{
            "report_id": "rep-h", "report_request_id": request_id, "report_specifier_id": "hist-1",
            "report_name": "HISTORY_USAGE", "created_date_time": end, "dtstart": HISTORY_START,
            "duration": timedelta(hours=1), "intervals": intervals}]))
    assert payload["response"]["response_code"] == 200, payload

    async def stored():
        async with await psycopg.AsyncConnection.connect(api_settings.database_url) as conn:
            cur = await conn.execute(
                "select r.at, r.value, r.unit, d.report_name from readings r join report_descriptions d "
                "using (ven_id, report_specifier_id, r_id) where r.ven_id = %s order by r.at", (ven_id,))
            rows = await cur.fetchall()
        return rows if len(rows) == 4 else None

    rows = await eventually(stored, 20, message="history readings in Postgres")
    assert rows == [(HISTORY_START + timedelta(minutes=15 * i), 100.0 + i, "Wh", "HISTORY_USAGE") for i in range(4)]
