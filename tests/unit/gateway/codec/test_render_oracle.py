"""What the codec renders is valid 2.0b, and openleadr's parse_message reads it to the same values.

For every renderer, hypothesis generates its inputs; the bytes must validate against the
vendored XSD (with our loaded schema and with openleadr's validating parser), carry no
schemaLocation, and parse_message must hand back exactly what went in (the whole dict is
compared, so extra or missing fields fail too). Messages the VTN also receives are read back
with our own parser as well.

openleadr's parse_message has quirks, compensated for in the expected dicts, each where it
bites; the text ones are handled by generating `ol_text` (see strategies.openleadr_reads_back).
Quirks every message shares:
- an empty element (e.g. an empty requestID) is read as None;
- a list of one element is read as a scalar in some places (reportRequestID), as a list in
  others (pending_reports, report_requests, specifier_payloads, event_signals, intervals);
- an optional element that is absent is simply absent from the dict.
"""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from openleadr.messaging import parse_message, validate_xml_schema
from openleadr.utils import group_targets_by_type

from adrstack.gateway.codec import model as m
from adrstack.gateway.codec import parse, render
from adrstack.gateway.codec.names import EI, OADR, PYLD, STRM, XCAL
from adrstack.gateway.codec.schema import schema

from .strategies import (datetimes, durations, durations_or_zero, floats, market_context, ol_text,
                         openleadr_reads_back, reading_types, response_codes, signal_names, signal_types,
                         unsigned_ints)

SETTINGS = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
NS = {"oadr": OADR, "ei": EI, "pyld": PYLD, "xcal": XCAL, "strm": STRM}


def _optional(strategy):
    return st.one_of(st.none(), strategy)


def check_valid(body: bytes) -> etree._Element:
    """The promises every rendered message keeps; returns the parsed root."""
    assert isinstance(body, bytes)
    assert b"schemaLocation" not in body
    root = etree.fromstring(body)
    schema().assertValid(root)
    validate_xml_schema(body)  # openleadr's own validating parser over the same XSD
    assert root.tag == f"{{{OADR}}}oadrPayload"
    assert root[-1][0].get(f"{{{EI}}}schemaVersion") == "2.0b"
    return root


def read(body: bytes, message_type: str) -> dict:
    check_valid(body)
    got_type, payload = parse_message(body)
    assert got_type == message_type
    return payload


def round_trip(body: bytes, expected: m.Inbound) -> None:
    """For messages a VTN also receives: our own parser reads back what we rendered."""
    assert parse(body).message == expected


# --------------------------------------------------------------------------- shared parts

ei_responses = st.builds(m.EiResponse, response_code=response_codes, response_description=_optional(ol_text),
                         request_id=st.one_of(st.just(""), ol_text))


def ol_response(r: m.EiResponse) -> dict:
    out = {"response_code": r.response_code, "request_id": r.request_id or None}  # empty element -> None
    if r.response_description is not None:
        out["response_description"] = r.response_description
    return out


def with_ven(d: dict, ven_id: str | None) -> dict:
    return d if ven_id is None else {**d, "ven_id": ven_id}


# A venID the poll path has validated: poll_ok writes it unescaped, as ASCII.
poll_ven_ids = st.text(st.sampled_from("abcdefXYZ0123456789-_.:"), min_size=1, max_size=24).filter(
    openleadr_reads_back)


@st.composite
def report_requests(draw) -> m.ReportRequest:
    start = draw(_optional(datetimes))
    return m.ReportRequest(
        report_request_id=draw(ol_text), report_specifier_id=draw(ol_text), granularity=draw(durations_or_zero),
        report_back_duration=draw(durations_or_zero),
        specifier_payloads=draw(st.lists(st.builds(m.SpecifierPayload, r_id=ol_text, reading_type=reading_types),
                                         min_size=1, max_size=3)),
        interval_start=start, interval_duration=None if start is None else draw(_optional(durations_or_zero)))


def ol_report_request(rr: m.ReportRequest) -> dict:
    spec = {"report_specifier_id": rr.report_specifier_id, "granularity": rr.granularity,
            "report_back_duration": rr.report_back_duration,
            "specifier_payloads": [{"r_id": p.r_id, "reading_type": p.reading_type} for p in rr.specifier_payloads]}
    if rr.interval_start is not None:
        # The renderer writes a missing interval duration as PT0S ("from the start on").
        spec["report_interval"] = {"dtstart": rr.interval_start, "duration": rr.interval_duration or timedelta(0)}
    return {"report_request_id": rr.report_request_id, "report_specifier": spec}


def parsed_report_request(rr: m.ReportRequest) -> m.ReportRequest:
    """What our parser reads back of a rendered report request (a missing duration is PT0S)."""
    return m.ReportRequest(
        report_request_id=rr.report_request_id, report_specifier_id=rr.report_specifier_id,
        granularity=rr.granularity, report_back_duration=rr.report_back_duration,
        specifier_payloads=[m.SpecifierPayload(p.r_id, p.reading_type) for p in rr.specifier_payloads],
        interval_start=rr.interval_start,
        interval_duration=None if rr.interval_start is None else rr.interval_duration or timedelta(0))


def check_request_id(got, given: str | None) -> None:
    """The requestID given, or else a fresh, populated one (rule 41)."""
    if given is not None:
        assert got == given
    else:
        assert isinstance(got, str) and got


def one_or_many(values: list):
    # openleadr reads a single repeated element as a scalar, several as a list.
    return values[0] if len(values) == 1 else values


# --------------------------------------------------------------------------- responses


@SETTINGS
@given(ven_id=poll_ven_ids)
def test_poll_ok(ven_id):
    body = render.poll_ok(ven_id)
    assert read(body, "oadrResponse") == {
        "response": {"response_code": 200, "response_description": "OK", "request_id": None}, "ven_id": ven_id}
    round_trip(body, m.Response(m.EiResponse(200, "OK", ""), ven_id))


@SETTINGS
@given(r=ei_responses, ven_id=_optional(ol_text))
def test_response(r, ven_id):
    body = render.response(r, ven_id)
    assert read(body, "oadrResponse") == with_ven({"response": ol_response(r)}, ven_id)
    round_trip(body, m.Response(r, ven_id))


# --------------------------------------------------------------------------- registration

profiles = st.lists(
    st.tuples(st.sampled_from(["2.0a", "2.0b"]),
              st.lists(st.sampled_from(["simpleHttp", "xmpp"]), min_size=1, max_size=2).map(tuple)),
    min_size=1, max_size=2).map(tuple)


@SETTINGS
@given(r=ei_responses, vtn_id=ol_text, registration_id=_optional(ol_text), ven_id=_optional(ol_text),
       poll_freq=_optional(durations_or_zero), offered=profiles)
def test_created_party_registration(r, vtn_id, registration_id, ven_id, poll_freq, offered):
    body = render.created_party_registration(r, vtn_id, registration_id=registration_id, ven_id=ven_id,
                                             poll_freq=poll_freq, profiles=offered)
    expected = {"response": ol_response(r), "vtn_id": vtn_id,
                "profiles": [{"profile_name": name, "transports": [{"transport_name": t} for t in transports]}
                             for name, transports in offered]}
    if registration_id is not None:
        expected["registration_id"] = registration_id
    if poll_freq is not None:
        expected["requested_oadr_poll_freq"] = poll_freq
    assert read(body, "oadrCreatedPartyRegistration") == with_ven(expected, ven_id)


def test_created_party_registration_offers_2_0b_simple_http_by_default():
    body = render.created_party_registration(m.EiResponse(200, "OK", "r"), "vtn")
    assert read(body, "oadrCreatedPartyRegistration")["profiles"] == [
        {"profile_name": "2.0b", "transports": [{"transport_name": "simpleHttp"}]}]


@SETTINGS
@given(r=ei_responses, registration_id=_optional(ol_text), ven_id=_optional(ol_text))
def test_canceled_party_registration(r, registration_id, ven_id):
    body = render.canceled_party_registration(r, registration_id, ven_id)
    expected = {"response": ol_response(r)}
    if registration_id is not None:
        expected["registration_id"] = registration_id
    assert read(body, "oadrCanceledPartyRegistration") == with_ven(expected, ven_id)
    round_trip(body, m.CanceledPartyRegistration(r, registration_id, ven_id))


@SETTINGS
@given(request_id=ol_text, registration_id=ol_text, ven_id=_optional(ol_text))
def test_cancel_party_registration(request_id, registration_id, ven_id):
    body = render.cancel_party_registration(request_id, registration_id, ven_id)
    assert read(body, "oadrCancelPartyRegistration") == with_ven(
        {"request_id": request_id, "registration_id": registration_id}, ven_id)
    round_trip(body, m.CancelPartyRegistration(request_id, registration_id, ven_id))


@SETTINGS
@given(ven_id=ol_text)
def test_request_reregistration(ven_id):
    assert read(render.request_reregistration(ven_id), "oadrRequestReregistration") == {"ven_id": ven_id}


# --------------------------------------------------------------------------- events

STATUSES = ["none", "far", "near", "active", "completed", "cancelled"]


@st.composite
def event_signals(draw) -> render.EventSignal:
    return render.EventSignal(
        signal_name=draw(signal_names), signal_type=draw(signal_types), signal_id=draw(ol_text),
        intervals=draw(st.lists(st.tuples(durations, floats), min_size=1, max_size=3)),
        current_value=draw(floats))


@st.composite
def event_parts(draw) -> render.EventParts:
    return render.EventParts(
        event_id=draw(ol_text), modification_number=draw(unsigned_ints), created_at=draw(datetimes),
        status=draw(st.sampled_from(STATUSES)), start_at=draw(datetimes), duration=draw(durations_or_zero),
        signals=draw(st.lists(event_signals(), min_size=1, max_size=2)), market_context=draw(market_context),
        priority=draw(unsigned_ints), response_required=draw(st.sampled_from(["always", "never"])),
        modified_at=draw(_optional(datetimes)), modification_reason=draw(_optional(ol_text)),
        test_event=draw(st.booleans()), vtn_comment=draw(_optional(ol_text)),
        # Zero counts as absent for these (the renderer leaves a zero tolerance/period out).
        start_after=draw(_optional(durations_or_zero)), notification=draw(_optional(durations_or_zero)),
        ramp_up=draw(_optional(durations_or_zero)), recovery=draw(_optional(durations_or_zero)),
        group_ids=tuple(draw(st.lists(ol_text, max_size=2))), resource_ids=tuple(draw(st.lists(ol_text, max_size=2))),
        party_ids=tuple(draw(st.lists(ol_text, max_size=2))))


def ol_event(p: render.EventParts, ven_id: str) -> dict:
    """The event as openleadr's parse_message reads it."""
    descriptor = {"event_id": p.event_id, "modification_number": p.modification_number, "priority": p.priority,
                  "market_context": p.market_context, "created_date_time": p.created_at, "event_status": p.status,
                  "test_event": p.test_event}
    for key, value in (("modification_date_time", p.modified_at), ("modification_reason", p.modification_reason),
                       ("vtn_comment", p.vtn_comment)):
        if value is not None:
            descriptor[key] = value
    period = {"dtstart": p.start_at, "duration": p.duration}
    if p.start_after:
        period["tolerance"] = {"tolerate": {"startafter": p.start_after}}
    # openleadr drops the x-ei prefix of x-eiNotification, x-eiRampUp and x-eiRecovery.
    for key, value in (("notification", p.notification), ("ramp_up", p.ramp_up), ("recovery", p.recovery)):
        if value:
            period[key] = value
    targets = ([{"group_id": g} for g in p.group_ids] + [{"resource_id": r} for r in p.resource_ids]
               + [{"ven_id": ven_id}] + [{"party_id": x} for x in p.party_ids])
    return {
        "event_descriptor": descriptor, "active_period": period,
        "event_signals": [{"signal_name": s.signal_name, "signal_type": s.signal_type, "signal_id": s.signal_id,
                           "current_value": s.current_value,
                           "intervals": [{"duration": d, "uid": uid, "signal_payload": v}
                                         for uid, (d, v) in enumerate(s.intervals)]}
                          for s in p.signals],
        # openleadr lists the targets one per dict, and adds them grouped by type.
        "targets": targets, "targets_by_type": group_targets_by_type(targets),
        "response_required": p.response_required,
    }


def check_event_rules(root: etree._Element, events: list[render.EventParts], ven_id: str) -> None:
    """The 2.0b rules the renderer promises for oadrDistributeEvent."""
    distribute = root.find("oadr:oadrSignedObject/oadr:oadrDistributeEvent", NS)
    assert distribute.get(f"{{{EI}}}schemaVersion") == "2.0b"
    assert distribute.findtext("pyld:requestID", namespaces=NS)  # populated (rule 41)
    rendered = distribute.findall("oadr:oadrEvent", NS)
    assert [e.findtext("ei:eiEvent/ei:eventDescriptor/ei:eventID", namespaces=NS) for e in rendered] == \
        [p.event_id for p in events]
    for element, parts in zip(rendered, events):
        [target] = element.findall("ei:eiEvent/ei:eiTarget", NS)
        assert [v.text for v in target.findall("ei:venID", NS)] == [ven_id]  # exactly one: the receiver
        signals = element.findall("ei:eiEvent/ei:eiEventSignals/ei:eiEventSignal", NS)
        assert len(signals) == len(parts.signals)
        for signal, signal_parts in zip(signals, parts.signals):
            intervals = signal.findall("strm:intervals/ei:interval", NS)
            assert [i.findtext("xcal:uid/xcal:text", namespaces=NS) for i in intervals] == \
                [str(n) for n in range(len(signal_parts.intervals))]  # rule 2: 0..n-1
            assert signal.findall("strm:intervals/ei:interval/xcal:dtstart", NS) == []


@settings(max_examples=35, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event_parts(), max_size=4), ven_id=ol_text, vtn_id=ol_text,
       request_id=_optional(ol_text), r=_optional(ei_responses))
def test_distribute_event(events, ven_id, vtn_id, request_id, r):
    body = render.distribute_event(vtn_id, [render.event(p).for_ven(ven_id) for p in events],
                                   request_id=request_id, r=r)
    root = check_valid(body)
    check_event_rules(root, events, ven_id)
    got = read(body, "oadrDistributeEvent")
    check_request_id(got.pop("request_id"), request_id)
    expected = {"vtn_id": vtn_id, "response": ol_response(r) if r is not None else
                {"response_code": 200, "response_description": "OK", "request_id": None}}
    if events:  # no events: no key at all
        expected["events"] = [ol_event(p, ven_id) for p in events]
    assert got == expected


def test_an_event_is_rendered_once_for_any_number_of_vens():
    parts = render.EventParts(
        event_id="e&1", modification_number=3, created_at=T0, status="far",
        start_at=T0, duration=timedelta(hours=1), market_context="http://m/",
        signals=[render.EventSignal("SIMPLE", "level", "s", [(timedelta(hours=1), 1.0)], 0.0)])
    xml = render.event(parts)
    for ven in ("ven-a", "ven <b> & 'c'"):
        body = render.distribute_event("vtn", [xml.for_ven(ven)], request_id="rq")
        check_event_rules(check_valid(body), [parts], ven)
        [event] = read(body, "oadrDistributeEvent")["events"]
        assert event["targets"] == [{"ven_id": ven}]


def test_each_distribute_event_gets_its_own_request_id():
    a, b = (etree.fromstring(render.distribute_event("vtn", [])).findtext(
        "oadr:oadrSignedObject/oadr:oadrDistributeEvent/pyld:requestID", namespaces=NS) for _ in range(2))
    assert a and b and a != b


# --------------------------------------------------------------------------- reports


@SETTINGS
@given(r=ei_responses, requests=st.lists(report_requests(), max_size=3), ven_id=_optional(ol_text))
def test_registered_report(r, requests, ven_id):
    body = render.registered_report(r, requests, ven_id)
    expected = {"response": ol_response(r)}
    if requests:
        expected["report_requests"] = [ol_report_request(rr) for rr in requests]
    assert read(body, "oadrRegisteredReport") == with_ven(expected, ven_id)
    round_trip(body, m.RegisteredReport(r, [parsed_report_request(rr) for rr in requests], ven_id))


@SETTINGS
@given(requests=st.lists(report_requests(), min_size=1, max_size=3), ven_id=_optional(ol_text),
       request_id=_optional(ol_text))
def test_create_report(requests, ven_id, request_id):
    body = render.create_report(requests, ven_id, request_id=request_id)
    got = read(body, "oadrCreateReport")
    rid = got.pop("request_id")
    check_request_id(rid, request_id)
    assert got == with_ven({"report_requests": [ol_report_request(rr) for rr in requests]}, ven_id)
    round_trip(body, m.CreateReport(rid, [parsed_report_request(rr) for rr in requests], ven_id))


@SETTINGS
@given(ids=st.lists(ol_text, min_size=1, max_size=3), to_follow=st.booleans(), ven_id=_optional(ol_text),
       request_id=_optional(ol_text))
def test_cancel_report(ids, to_follow, ven_id, request_id):
    body = render.cancel_report(ids, to_follow, ven_id, request_id=request_id)
    got = read(body, "oadrCancelReport")
    rid = got.pop("request_id")
    check_request_id(rid, request_id)
    assert got == with_ven({"report_request_id": one_or_many(ids), "report_to_follow": to_follow}, ven_id)
    round_trip(body, m.CancelReport(rid, ids, to_follow, ven_id))


@SETTINGS
@given(r=ei_responses, ven_id=_optional(ol_text),
       cancel=_optional(st.tuples(st.lists(ol_text, min_size=1, max_size=3), st.booleans())))
def test_updated_report(r, ven_id, cancel):
    body = render.updated_report(r, ven_id, cancel=cancel)
    got = read(body, "oadrUpdatedReport")
    expected = {"response": ol_response(r)}
    if cancel is not None:
        check_request_id(got["cancel_report"].pop("request_id"), None)
        expected["cancel_report"] = with_ven({"report_request_id": one_or_many(cancel[0]),
                                              "report_to_follow": cancel[1]}, ven_id)
    assert got == with_ven(expected, ven_id)


@pytest.mark.parametrize("renderer", [render.created_report, render.canceled_report])
@SETTINGS
@given(r=ei_responses, pending=st.lists(ol_text, max_size=3), ven_id=_optional(ol_text))
def test_created_and_canceled_report(renderer, r, pending, ven_id):
    body = renderer(r, pending, ven_id)
    message_type = "oadrCreatedReport" if renderer is render.created_report else "oadrCanceledReport"
    # openleadr turns oadrPendingReports into a list of {'report_request_id': ...}, [] when empty.
    assert read(body, message_type) == with_ven(
        {"response": ol_response(r), "pending_reports": [{"report_request_id": i} for i in pending]}, ven_id)
    model = m.CreatedReport if renderer is render.created_report else m.CanceledReport
    round_trip(body, model(r, pending, ven_id))


@SETTINGS
@given(answering=_optional(ol_text), ven_id=_optional(ol_text), request_id=_optional(ol_text),
       report_request_id=ol_text, report_id=_optional(ol_text), created=datetimes,
       duration=_optional(durations_or_zero))
def test_register_report_of_the_vtn(answering, ven_id, request_id, report_request_id, report_id, created, duration):
    report = m.Report(report_request_id=report_request_id, report_specifier_id="METADATA", created_at=created,
                      report_id=report_id, duration=duration)
    body = render.register_report([report], ven_id, request_id=request_id, report_request_id=answering)
    got = read(body, "oadrRegisterReport")
    rid = got.pop("request_id")
    check_request_id(rid, request_id)
    ol_report = {"report_request_id": report_request_id, "report_specifier_id": "METADATA",
                 "created_date_time": created}
    if report_id is not None:
        ol_report["report_id"] = report_id
    if duration is not None:
        ol_report["duration"] = duration
    # openleadr reads a reportRequestID of digits as an int, the top-level one included.
    def ol_id(value):
        return int(value) if value.isdigit() else value
    ol_report["report_request_id"] = ol_id(report_request_id)
    expected = with_ven({"reports": [ol_report]}, ven_id)
    if answering is not None:
        expected["report_request_id"] = ol_id(answering)
    assert got == expected
    round_trip(body, m.RegisterReport(rid, [report], ven_id, answering))


def test_report_renderers_refuse_what_the_schema_refuses():
    no_payloads = m.ReportRequest("rr", "spec", timedelta(minutes=1), timedelta(0), [])
    ok = m.EiResponse(200, "OK", "r")
    with pytest.raises(ValueError):
        render.create_report([])
    with pytest.raises(ValueError):
        render.create_report([no_payloads])
    with pytest.raises(ValueError):
        render.registered_report(ok, [no_payloads])
    with pytest.raises(ValueError):
        render.register_report([m.Report("0", "METADATA", T0, intervals=[m.ReportInterval([])])])
    with pytest.raises(ValueError):
        render.cancel_report([], False)
    with pytest.raises(ValueError):
        render.updated_report(ok, cancel=([], True))


# --------------------------------------------------------------------------- opt


@SETTINGS
@given(r=ei_responses, opt_id=ol_text)
def test_created_opt(r, opt_id):
    assert read(render.created_opt(r, opt_id), "oadrCreatedOpt") == {"response": ol_response(r), "opt_id": opt_id}


@SETTINGS
@given(r=ei_responses, opt_id=_optional(ol_text))
def test_canceled_opt(r, opt_id):
    expected = {"response": ol_response(r)}
    if opt_id is not None:
        expected["opt_id"] = opt_id
    assert read(render.canceled_opt(r, opt_id), "oadrCanceledOpt") == expected


# --------------------------------------------------------------------------- errors

# The message 2.0b pairs with each request a VTN reads (the one an error is answered with).
ANSWERS = {
    "oadrQueryRegistration": "oadrCreatedPartyRegistration",
    "oadrCreatePartyRegistration": "oadrCreatedPartyRegistration",
    "oadrCancelPartyRegistration": "oadrCanceledPartyRegistration",
    "oadrRequestEvent": "oadrDistributeEvent",
    "oadrRegisterReport": "oadrRegisteredReport",
    "oadrUpdateReport": "oadrUpdatedReport",
    "oadrCreateReport": "oadrCreatedReport",
    "oadrCancelReport": "oadrCanceledReport",
    "oadrCreateOpt": "oadrCreatedOpt",
    "oadrCancelOpt": "oadrCanceledOpt",
}
_ANSWERED_WITH_RESPONSE = ["oadrPoll", "oadrCreatedEvent", "oadrCanceledPartyRegistration", "oadrRegisteredReport",
                           "oadrCreatedReport", "oadrCanceledReport", "oadrResponse", "oadrSomethingElse"]


@SETTINGS
@given(message_type=st.sampled_from([*ANSWERS, *_ANSWERED_WITH_RESPONSE]), code=st.integers(400, 599),
       description=ol_text, vtn_id=ol_text, request_id=st.one_of(st.just(""), ol_text), ven_id=_optional(ol_text),
       opt_id=_optional(ol_text))
def test_error_answer(message_type, code, description, vtn_id, request_id, ven_id, opt_id):
    body = render.error_answer(message_type, code, description, vtn_id=vtn_id, request_id=request_id,
                               ven_id=ven_id, opt_id=opt_id)
    answer = ANSWERS.get(message_type, "oadrResponse")
    got = read(body, answer)
    assert got["response"] == ol_response(m.EiResponse(code, description, request_id))
    if answer in ("oadrCreatedPartyRegistration", "oadrDistributeEvent"):
        assert got["vtn_id"] == vtn_id
        assert "events" not in got
    elif answer in ("oadrCreatedOpt", "oadrCanceledOpt"):
        assert got.get("opt_id") == (opt_id or None)  # created_opt writes a missing optID empty
    else:
        assert got.get("ven_id") == ven_id


# --------------------------------------------------------------------------- coverage

TESTED = {"poll_ok", "response", "created_party_registration", "canceled_party_registration",
          "cancel_party_registration", "request_reregistration", "event", "distribute_event", "registered_report",
          "create_report", "cancel_report", "register_report", "updated_report", "created_report", "canceled_report", "created_opt",
          "canceled_opt", "new_request_id", "error_answer"}


def test_every_renderer_is_tested():
    public = {name for name, f in inspect.getmembers(render, inspect.isfunction)
              if f.__module__ == render.__name__ and not name.startswith("_")}
    assert public == TESTED
