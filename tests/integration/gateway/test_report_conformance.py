"""The 2.0b EiReport rules of ../shared/openadr-2.0b-vtn-rules.md, from the VEN's side of the wire:
real openleadr VENs where they can say it (their ``after_receive_xml`` hook keeps the bytes the
gateway answered, read with lxml), raw XML over HTTP (``rawhttp``) for what openleadr's VEN never
sends: an oadrCreateReport or oadrCancelReport for the VTN's own reports, an oadrRegisteredReport
carrying requests, an oadrUpdateReport with a reportRequestID of our choosing or no interval dtstart.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from lxml import etree
from openleadr.messaging import create_message, validate_xml_schema
from openleadr.objects import SamplingRate
from openleadr.utils import parse_datetime, parse_duration

from adrstack.gateway.app import Gateway
from adrstack.shared.kv_keys import reports_key
from adrstack.shared.messages import utcnow
from tests.helpers import eventually

from . import rawhttp
from .test_event_conformance import NS, code, kind, message_of, text
from .test_report_ingest import issued
from .test_reports import add_usage_report

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
# What a report request must not carry (R1_3010-3027, 3150, 3160).
FORBIDDEN = ("xcal:tolerance", "ei:x-eiNotification", "ei:x-eiRampUp", "ei:x-eiRecovery", "emix:itemBase")


# --------------------------------------------------------------------------- the wire


class Wire:
    """What an openleadr VEN received, as bytes, in order (its after_receive_xml hook)."""

    def __init__(self, client):
        self.received: list[etree._Element] = []
        client.add_hook("after_receive_xml", lambda xml: self.received.append(message_of(xml.encode())))

    def of_kind(self, name: str) -> list[etree._Element]:
        return [m for m in self.received if kind(m) == name]


async def post(gateway, service: str, body: str) -> etree._Element:
    """POST raw XML on a connection of its own; the answer's message element (HTTP 200, valid 2.0b)."""
    url = urlsplit(gateway.vtn_url)
    reply = await rawhttp.request(url.port, "POST", f"{url.path}/{service}", body.encode())
    assert reply.status == 200 and reply.content_type == "application/xml", (reply.status, reply.text[:300])
    validate_xml_schema(reply.body)
    return message_of(reply.body)


async def poll(gateway, ven_id: str) -> etree._Element:
    return await post(gateway, "OadrPoll", create_message("oadrPoll", ven_id=ven_id))


def zero_durations(xml: str) -> str:
    # openleadr writes a zero timedelta as "P", which no schema accepts.
    return xml.replace("<xcal:duration>P</xcal:duration>", "<xcal:duration>PT0S</xcal:duration>")


def create_report(ven_id: str, *requests: tuple[str, str], request_id: str = "vcr-1") -> str:
    """A VEN's oadrCreateReport; each request (reportRequestID, reportSpecifierID) for a one-shot report."""
    return zero_durations(create_message("oadrCreateReport", request_id=request_id, ven_id=ven_id, report_requests=[{
        "report_request_id": rr_id,
        "report_specifier": {"report_specifier_id": spec, "granularity": timedelta(0),
                             "report_back_duration": timedelta(0),
                             "specifier_payloads": [{"r_id": "any", "reading_type": "x-notApplicable"}]}}
        for rr_id, spec in requests]))


def cancel_report(ven_id: str, *ids: str, request_id: str = "vcan-1") -> str:
    body = create_message("oadrCancelReport", request_id=request_id, ven_id=ven_id, report_request_id=ids[0],
                          report_to_follow=False)
    extra = "".join(f"<ei:reportRequestID>{i}</ei:reportRequestID>" for i in ids[1:])
    body = re.sub(r"(<ei:reportRequestID>[^<]*</ei:reportRequestID>)", lambda m: m.group(1) + extra, body, count=1)
    assert body.count("<ei:reportRequestID>") == len(ids)
    return body


def registered_report(ven_id: str, request_id: str, *requests: tuple[str, str]) -> str:
    """The VEN's oadrRegisteredReport answering the VTN's oadrRegisterReport; ``requests`` ride in it."""
    return zero_durations(create_message("oadrRegisteredReport", ven_id=ven_id,
                          response={"response_code": 200, "response_description": "OK", "request_id": request_id},
                          report_requests=[{
                              "report_request_id": rr_id,
                              "report_specifier": {"report_specifier_id": spec, "granularity": timedelta(0),
                                                   "report_back_duration": timedelta(0),
                                                   "specifier_payloads": [{"r_id": "any",
                                                                           "reading_type": "x-notApplicable"}]}}
                              for rr_id, spec in requests]))


def update_report(ven_id: str, report_request_id: str, *, value: float = 1.0, at: datetime | None = T0,
                  report_dtstart: datetime | None = None) -> str:
    """oadrUpdateReport of usage-1/power-1, one interval at ``at`` (None: no interval dtstart)."""
    interval = {"dtstart": at or T0, "report_payload": {"r_id": "power-1", "value": value}}
    report = {"report_request_id": report_request_id, "report_specifier_id": "usage-1",
              "report_name": "TELEMETRY_USAGE", "created_date_time": T0, "intervals": [interval]}
    if report_dtstart is not None:
        report["dtstart"] = report_dtstart
    xml = create_message("oadrUpdateReport", ven_id=ven_id, request_id="vup-1", reports=[report])
    if at is None:  # openleadr always writes the interval's
        xml, cut = re.subn(r"(<ei:interval>)\s*<xcal:dtstart>.*?</xcal:dtstart>", r"\1", xml, flags=re.S)
        assert cut == 1
    return xml


def pending(message: etree._Element) -> list[str]:
    return [e.text for e in message.findall("oadr:oadrPendingReports/ei:reportRequestID", NS)]


def request_id_of(message: etree._Element) -> str | None:
    return text(message, "ei:eiResponse/pyld:requestID")


async def registered_ven(vens, gateway, name: str, *reports):
    """An openleadr VEN, registered, with its reports registered (usage-1 unless given), watched."""
    client = vens(name, gateway.vtn_url)
    wire = Wire(client)
    for add in reports or (add_usage_report,):
        add(client)
    await client.create_party_registration()
    assert client.ven_id
    await client.register_reports(client.reports)
    return client, wire


async def idle(gateway, client) -> None:
    """Take the VTN's own metadata (due once the VEN registered its reports): polls are idle after."""
    assert kind(await poll(gateway, client.ven_id)) == "oadrRegisterReport"
    assert kind(await poll(gateway, client.ven_id)) == "oadrResponse"


def check_vtn_metadata(message: etree._Element, ven_id: str, answering: str | None) -> None:
    """The VTN's oadrRegisterReport: its METADATA report, no data points, naming the request it answers."""
    assert kind(message) == "oadrRegisterReport"
    assert text(message, "pyld:requestID")
    assert text(message, "ei:venID") == ven_id
    assert text(message, "ei:reportRequestID") == answering
    [report] = message.findall("oadr:oadrReport", NS)
    assert text(report, "ei:reportSpecifierID") == "METADATA"
    assert text(report, "ei:reportRequestID") == (answering or "0")
    assert report.findall("oadr:oadrReportDescription", NS) == []
    created = parse_datetime(text(report, "ei:createdDateTime"))
    assert abs(created - utcnow()) < timedelta(minutes=5)


# --------------------------------------------------------------------------- N1_0020 / N0_5020


async def test_n1_0020_after_the_ven_registers_its_reports_the_vtn_registers_its_metadata(gateway, vens):
    client, wire = await registered_ven(vens, gateway, "metadata-after-registration")
    sent = []
    perform = client._perform_request

    async def noted(service, message):
        answer = await perform(service, message)
        sent.append((service, message, answer))
        return answer

    client._perform_request = noted
    # The real VEN polls: it gets the VTN's oadrRegisterReport and answers oadrRegisteredReport.
    await client._poll()
    [registration] = wire.of_kind("oadrRegisterReport")
    check_vtn_metadata(registration, client.ven_id, None)
    [(service, message, answer)] = [s for s in sent if s[0] == "EiReport"]
    assert service == "EiReport" and "oadrRegisteredReport" in message
    assert f">{text(registration, 'pyld:requestID')}<" in message  # it answers that registration
    assert answer[0] == "oadrResponse" and answer[1]["response"]["response_code"] == 200, answer
    # Once: the next poll has nothing.
    assert (await client.poll())[0] == "oadrResponse"

    # The VEN registering its reports again (a restart) gets the VTN's metadata again.
    await client.register_reports(client.reports)
    assert (await client.poll())[0] == "oadrRegisterReport"
    assert (await client.poll())[0] == "oadrResponse"


# --------------------------------------------------------------------------- R1_3070-3100, 3120, 3170, 3180


async def test_r1_3070_3100_the_ven_asks_for_the_vtn_metadata_and_cancels_its_requests(gateway, vens):
    client, _ = await registered_ven(vens, gateway, "asks-the-vtn")
    await idle(gateway, client)
    ven_id = client.ven_id

    created = await post(gateway, "EiReport", create_report(ven_id, ("vr-1", "METADATA"), request_id="ask-1"))
    assert (kind(created), code(created), request_id_of(created)) == ("oadrCreatedReport", 200, "ask-1")
    assert pending(created) == ["vr-1"] and text(created, "ei:venID") == ven_id

    # The VTN re-publishes its metadata on the next poll, naming the request (R1_3120), once.
    registration = await poll(gateway, ven_id)
    check_vtn_metadata(registration, ven_id, "vr-1")
    answer = await post(gateway, "EiReport", registered_report(ven_id, text(registration, "pyld:requestID")))
    assert (kind(answer), code(answer)) == ("oadrResponse", 200)
    assert kind(await poll(gateway, ven_id)) == "oadrResponse"

    # A request cancelled before it was answered is no longer pending, and nothing is sent for it.
    created = await post(gateway, "EiReport", create_report(ven_id, ("vr-2", "METADATA"), request_id="ask-2"))
    assert pending(created) == ["vr-2"]
    cancelled = await post(gateway, "EiReport", cancel_report(ven_id, "vr-2", request_id="can-2"))
    assert (kind(cancelled), code(cancelled), request_id_of(cancelled)) == ("oadrCanceledReport", 200, "can-2")
    assert pending(cancelled) == []
    assert kind(await poll(gateway, ven_id)) == "oadrResponse"

    # The answered one can be cancelled too; cancelled, its id is unknown.
    cancelled = await post(gateway, "EiReport", cancel_report(ven_id, "vr-1"))
    assert (kind(cancelled), code(cancelled), pending(cancelled)) == ("oadrCanceledReport", 200, [])
    again = await post(gateway, "EiReport", cancel_report(ven_id, "vr-1", request_id="can-again"))
    assert (kind(again), code(again), request_id_of(again)) == ("oadrCanceledReport", 452, "can-again")


async def test_r1_3170_3180_two_requests_in_one_create_report_or_in_two_and_452_for_unknown_ones(gateway, vens):
    client, _ = await registered_ven(vens, gateway, "two-requests")
    await idle(gateway, client)
    ven_id = client.ven_id

    # Errors first: an unknown reportSpecifierID fails the whole message, and records nothing.
    refused = await post(gateway, "EiReport", create_report(ven_id, ("ok-1", "METADATA"), ("bad-1", "usage-1")))
    assert (kind(refused), code(refused)) == ("oadrCreatedReport", 452)
    assert kind(await poll(gateway, ven_id)) == "oadrResponse"
    unknown = await post(gateway, "EiReport", cancel_report(ven_id, "never-asked"))
    assert (kind(unknown), code(unknown)) == ("oadrCanceledReport", 452)

    # Two in one message: both pending, each answered by its own oadrRegisterReport, in order.
    both = await post(gateway, "EiReport", create_report(ven_id, ("two-a", "METADATA"), ("two-b", "METADATA")))
    assert (code(both), pending(both)) == (200, ["two-a", "two-b"])
    check_vtn_metadata(await poll(gateway, ven_id), ven_id, "two-a")
    check_vtn_metadata(await poll(gateway, ven_id), ven_id, "two-b")
    assert kind(await poll(gateway, ven_id)) == "oadrResponse"

    # Two in two messages: the second answer lists both as pending.
    first = await post(gateway, "EiReport", create_report(ven_id, ("sep-c", "METADATA"), request_id="c"))
    second = await post(gateway, "EiReport", create_report(ven_id, ("sep-d", "METADATA"), request_id="d"))
    assert (pending(first), pending(second)) == (["sep-c"], ["sep-c", "sep-d"])
    # One cancel naming both, and one known id beside an unknown one is refused whole.
    mixed = await post(gateway, "EiReport", cancel_report(ven_id, "sep-c", "never-asked"))
    assert (kind(mixed), code(mixed)) == ("oadrCanceledReport", 452)
    cancelled = await post(gateway, "EiReport", cancel_report(ven_id, "sep-c", "sep-d"))
    assert (code(cancelled), pending(cancelled)) == (200, [])
    assert kind(await poll(gateway, ven_id)) == "oadrResponse"


async def test_r1_3060_a_request_for_the_vtn_metadata_may_ride_in_the_ven_registered_report(gateway, vens):
    client, _ = await registered_ven(vens, gateway, "rides-in-registered")
    registration = await poll(gateway, client.ven_id)
    check_vtn_metadata(registration, client.ven_id, None)
    answer = await post(gateway, "EiReport", registered_report(client.ven_id, text(registration, "pyld:requestID"),
                                                                ("ride-1", "METADATA")))
    assert (kind(answer), code(answer)) == ("oadrResponse", 200)
    check_vtn_metadata(await poll(gateway, client.ven_id), client.ven_id, "ride-1")
    refused = await post(gateway, "EiReport", registered_report(client.ven_id, "x", ("ride-2", "HISTORY_USAGE")))
    assert (kind(refused), code(refused)) == ("oadrResponse", 452)
    assert kind(await poll(gateway, client.ven_id)) == "oadrResponse"


# --------------------------------------------------------------------------- R1_3010-3027, 3150, 3160


def add_two_reports(client) -> None:
    """A report of two data points (one samples no faster than every 30 s), and another report; the
    gateway wants a sample a second (gateway_settings), so each request is held to the minimum."""
    for r_id, low, high in (("power-1", 30, 300), ("energy-1", 5, 60)):
        client.add_report(callback=lambda: 1.0, resource_id="meter-1", measurement="RealPower", unit="W",
                          report_specifier_id="usage-2", r_id=r_id, report_duration=timedelta(hours=1),
                          sampling_rate=SamplingRate(timedelta(seconds=low), timedelta(seconds=high), False))
    client.add_report(callback=lambda: 1.0, resource_id="meter-2", measurement="RealPower", unit="W",
                      report_specifier_id="usage-3", r_id="power-3", sampling_rate=timedelta(seconds=2),
                      report_duration=timedelta(hours=1))


def check_report_requests(requests: list[etree._Element], offered: dict[str, dict[str, timedelta]]) -> list[str]:
    """R1_3010-3027/3150/3160 on each oadrReportRequest; ``offered``: specifier -> rID -> minimum period.
    Returns the reportRequestIDs."""
    ids = []
    for request in requests:
        request_id = text(request, "ei:reportRequestID")
        assert request_id and request_id != "0"
        ids.append(request_id)
        [spec] = request.findall("ei:reportSpecifier", NS)
        points = offered[text(spec, "ei:reportSpecifierID")]
        payloads = spec.findall("ei:specifierPayload", NS)
        assert sorted(text(p, "ei:rID") for p in payloads) == sorted(points)
        assert {text(p, "ei:readingType") for p in payloads} == {"x-notApplicable"}
        granularity = parse_duration(text(spec, "xcal:granularity/xcal:duration"))
        back = parse_duration(text(spec, "ei:reportBackDuration/xcal:duration"))
        assert granularity >= max(points.values()) and back >= granularity
        # Periodic: the reportInterval says from when and for how long.
        start = parse_datetime(text(spec, "ei:reportInterval/xcal:properties/xcal:dtstart/xcal:date-time"))
        assert abs(start - utcnow()) < timedelta(minutes=5)
        assert parse_duration(text(spec, "ei:reportInterval/xcal:properties/xcal:duration/xcal:duration")) \
            == timedelta(0)
        for tag in FORBIDDEN:
            assert request.xpath(f".//{tag}", namespaces=NS) == [], tag
        # Every itemBase (power:*, oadr:customUnit, emix:*...) lives outside the ei/xcal namespaces.
        assert [e.tag for e in request.iter() if e is not request
                and etree.QName(e).namespace not in (NS["ei"], NS["xcal"])] == []
    return ids


OFFERED = {"usage-2": {"power-1": timedelta(seconds=30), "energy-1": timedelta(seconds=5)},
           "usage-3": {"power-3": timedelta(seconds=2)}}


async def test_r1_3010_report_requests_in_the_registered_report(gateway, bus, vens):
    """As the VEN receives them in the oadrRegisteredReport (R1_3060), each VEN its own ids."""
    ids = []
    for name in ("requested-a", "requested-b"):
        client, wire = await registered_ven(vens, gateway, name, add_two_reports)
        [answer] = wire.of_kind("oadrRegisteredReport")
        assert code(answer) == 200
        requests = answer.findall("oadr:oadrReportRequest", NS)
        assert len(requests) == 2
        ids += check_report_requests(requests, OFFERED)
        assert sorted(r["report_request_id"] for r in client.report_requests) == sorted(ids[-2:])
    assert len(set(ids)) == 4


async def test_r1_3010_report_requests_in_an_oadr_create_report_on_a_poll(gateway_settings, bus, vens):
    """Not piggybacking, the same requests come as an oadrCreateReport on the next poll, then never again
    (the VEN's real oadrCreatedReport acknowledges them), and the VTN's metadata after them."""
    gw = Gateway(gateway_settings.model_copy(update={"piggyback_report_requests": False}))
    await gw.start()
    try:
        client, wire = await registered_ven(vens, gw, "requested-on-poll", add_two_reports)
        [answer] = wire.of_kind("oadrRegisteredReport")
        assert answer.findall("oadr:oadrReportRequest", NS) == []
        await client._poll()  # the real VEN takes the requests and answers oadrCreatedReport
        [create] = wire.of_kind("oadrCreateReport")
        assert text(create, "pyld:requestID") and text(create, "ei:venID") == client.ven_id
        ids = check_report_requests(create.findall("oadr:oadrReportRequest", NS), OFFERED)
        assert len(set(ids)) == 2

        async def acknowledged():
            record = await bus.kv_json(reports_key(client.ven_id))
            return record and sorted(r["report_request_id"] for r in record["requests"] if r["acknowledged_at"]) \
                == sorted(ids)
        await eventually(acknowledged, 10, message="oadrCreatedReport recorded")
        assert kind(await poll(gw, client.ven_id)) == "oadrRegisterReport"
        assert kind(await poll(gw, client.ven_id)) == "oadrResponse"
    finally:
        await gw.stop()


async def test_r1_3060_requests_in_the_registered_report_are_marked_sent_and_not_sent_again(gateway, bus, vens):
    client, wire = await registered_ven(vens, gateway, "piggybacked")
    # The real VEN took the requests from the oadrRegisteredReport and answered oadrCreatedReport.
    [request] = client.report_requests
    record = await bus.kv_json(reports_key(client.ven_id))
    assert [(r["report_request_id"], r["sent"]) for r in record["requests"]] == [(request["report_request_id"], True)]
    # Next polls: the VTN's metadata, then nothing; never an oadrCreateReport.
    assert kind(await poll(gateway, client.ven_id)) == "oadrRegisterReport"
    assert kind(await poll(gateway, client.ven_id)) == "oadrResponse"
    assert wire.of_kind("oadrCreateReport") == []
    ok = await post(gateway, "EiReport", update_report(client.ven_id, request["report_request_id"]))
    assert (kind(ok), code(ok)) == ("oadrUpdatedReport", 200)


# --------------------------------------------------------------------------- rule 304


async def test_rule_304_data_for_a_report_request_id_the_vtn_did_not_issue_to_this_ven_is_452(gateway, bus, vens):
    client, _ = await registered_ven(vens, gateway, "rule-304")
    other, _ = await registered_ven(vens, gateway, "rule-304-other")
    subject = bus.subjects.report_data(client.ven_id)
    for bogus in ("rr-never-issued", "0", issued(other)):
        refused = await post(gateway, "EiReport", update_report(client.ven_id, bogus))
        assert (kind(refused), code(refused)) == ("oadrUpdatedReport", 452), bogus
        assert "reportRequestID" in text(refused, "ei:eiResponse/ei:responseDescription")
    assert await bus.stored(subject) == []
    ok = await post(gateway, "EiReport", update_report(client.ven_id, issued(client), value=3.5))
    assert (kind(ok), code(ok)) == ("oadrUpdatedReport", 200)
    [fact] = await bus.stored(subject)
    assert fact["report_request_id"] == issued(client) and fact["readings"][0]["value"] == 3.5

    # Registering its reports again supersedes the old requests: their ids are refused from then on.
    old = issued(client)
    client.report_requests = []
    await client.register_reports(client.reports)
    assert issued(client) != old
    stale = await post(gateway, "EiReport", update_report(client.ven_id, old, value=4.5))
    assert code(stale) == 452


async def test_rule_304_a_request_issued_through_another_replica_is_known(gateway_settings, vens):
    a = Gateway(gateway_settings)
    b = Gateway(gateway_settings.model_copy(update={"vtn_port": 0}))
    await a.start()
    await b.start()
    try:
        # B's mirror of the report records stands still: it never sees what A writes, as a lagging
        # watch would not yet have.
        await b.store.reports.mirror.stop()
        client, _ = await registered_ven(vens, a, "issued-via-a")
        assert b.store.report_record(client.ven_id).requests == []
        # B reads KV rather than refuse.
        ok = await post(b, "EiReport", update_report(client.ven_id, issued(client)))
        assert (kind(ok), code(ok)) == ("oadrUpdatedReport", 200)
        refused = await post(b, "EiReport", update_report(client.ven_id, "rr-never-issued"))
        assert code(refused) == 452
    finally:
        await a.stop()
        await b.stop()


# --------------------------------------------------------------------------- rule 314


async def test_rule_314_an_interval_without_dtstart_takes_the_report_dtstart(gateway, bus, vens):
    client, _ = await registered_ven(vens, gateway, "rule-314")
    at = datetime(2030, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    body = update_report(client.ven_id, issued(client), value=6.5, at=None, report_dtstart=at)
    assert body.count("<xcal:dtstart>") == 1  # the report's; none in the interval
    ok = await post(gateway, "EiReport", body)
    assert (kind(ok), code(ok)) == ("oadrUpdatedReport", 200)
    [fact] = await eventually(lambda: bus.stored(bus.subjects.report_data(client.ven_id)), 10, message="ReportData")
    assert [(r["value"], r["at"]) for r in fact["readings"]] == [(6.5, "2030-02-03T04:05:06Z")]
