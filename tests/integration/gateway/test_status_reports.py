"""TELEMETRY_STATUS from a real openleadr VEN to GraphQL: the VEN registers a TELEMETRY_STATUS
report and is asked for it; its statuses (oadrPayloadResourceStatus, sent as raw XML because
openleadr's template can only write payloadFloat) reach the stream once however often they are
re-sent, telemetry stores them, and the api shows the latest on `vens` and the history on
`venStatus`."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import httpx
from openleadr import enums
from openleadr.messaging import parse_message

from adrstack.api.app import create_app
from adrstack.api.settings import ApiSettings
from adrstack.shared.messages import utcnow
from adrstack.telemetry.settings import TelemetrySettings
from tests.helpers import eventually
from tests.integration.api.helpers import gql
from tests.report_xml import resource_status, status_update

from .test_opt_state_openleadr import Telemetry
from .test_reports import add_usage_report


def add_status_report(client) -> None:
    client.add_report(callback=lambda: 1.0, resource_id="pump-1", report_name="TELEMETRY_STATUS",
                      report_type=enums.REPORT_TYPE.X_RESOURCE_STATUS, reading_type="x-notApplicable",
                      report_specifier_id="status-1", r_id="pump-status", sampling_rate=timedelta(seconds=1),
                      report_duration=timedelta(hours=1))


async def post(url: str, body: bytes) -> dict:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/EiReport", data=body, headers={"Content-Type": "application/xml"}) as r:
            assert r.status == 200
            return parse_message(await r.text())[1]["response"]


VENS = "{ vens { venId status { online manualOverride resourceId at loadControl { setPoint { current normal } } } } }"
HISTORY = """query($v: String!) { venStatus(venId: $v) { at online manualOverride resourceId rId
  loadControl { capacity { current min max } setPoint { current } } } }"""


async def test_an_openleadr_ven_reports_its_status_and_graphql_shows_it(gateway, gateway_settings, bus, vens):
    client = vens("status-ven", gateway.vtn_url)
    add_usage_report(client)
    add_status_report(client)
    await client.run()
    ven_id = client.ven_id

    def requested() -> str | None:  # the VTN asked for the status report (through the VEN's poll)
        return next((r["report_request_id"] for r in client.report_requests
                     if r["report_specifier_id"] == "status-1"), None)

    request_id = await eventually(requested, 15, message="the TELEMETRY_STATUS report request")
    t0 = utcnow().replace(microsecond=0) - timedelta(minutes=1)
    body = status_update(ven_id, report_request_id=request_id, report_specifier_id="status-1", r_id="pump-status",
                         statuses=[(t0, resource_status(True, False, SetPoint={"current": 21.5, "normal": 20})),
                                   (t0 + timedelta(seconds=30), resource_status(
                                       False, True, Capacity={"min": 0, "max": 10, "current": 2},
                                       SetPoint={"current": 18}))])
    for _ in range(2):  # re-sent: the same fact, dropped by the stream's duplicate window
        answer = await post(gateway.vtn_url, body)
        assert answer["response_code"] == 200, answer
    [fact] = await eventually(lambda: bus.stored(bus.subjects.report_status(ven_id)), 10, message="ReportStatus")
    assert [(s["online"], s["resource_id"]) for s in fact["statuses"]] == [(True, "pump-1"), (False, "pump-1")]
    assert len(await bus.stored(bus.subjects.report_status(ven_id))) == 1

    settings = TelemetrySettings(**gateway_settings.model_dump(include=set(TelemetrySettings.model_fields)),
                                 fetch_timeout=0.5)
    api_settings = ApiSettings(**gateway_settings.model_dump(include=set(ApiSettings.model_fields)))
    app = create_app(api_settings)
    async with Telemetry(settings), app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api") as api:

        async def shown() -> dict | None:
            got = (await gql(api, VENS))["data"]["vens"]
            return next((v["status"] for v in got if v["venId"] == ven_id and v["status"]), None)

        status = await eventually(shown, 20, message="the VEN's status on vens")
        assert status["online"] is False and status["manualOverride"] is True
        assert status["resourceId"] == "pump-1" and status["loadControl"]["setPoint"] == {"current": 18.0,
                                                                                            "normal": None}
        history = (await gql(api, HISTORY, {"v": ven_id}))["data"]["venStatus"]
        assert [(h["online"], h["loadControl"]["setPoint"]["current"]) for h in history] == [(False, 18.0),
                                                                                             (True, 21.5)]
        assert history[0]["loadControl"]["capacity"] == {"current": 2.0, "min": 0.0, "max": 10.0}
        unknown = await gql(api, HISTORY, {"v": "no-such-ven"})
        assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # openleadr's own TELEMETRY_STATUS floats are readings, not statuses: they never became a fact here.
    assert len(await bus.stored(bus.subjects.report_status(ven_id))) == 1
