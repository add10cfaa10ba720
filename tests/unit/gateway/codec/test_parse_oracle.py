"""What openleadr's create_message renders, the codec parses to the same values.

For every message a VTN receives, hypothesis generates openleadr payload dicts, openleadr
renders them, and ``codec.parse`` must read back exactly the generated values (the whole
typed message is compared, so a field read wrongly or not at all fails the test).

openleadr (0.5.36) is the oracle but has quirks of its own; each is compensated for where it
bites, with a comment saying so. The ones every message shares:
- its jinja environment does not autoescape, so text is handed to it XML-escaped
  (``_for_openleadr``), while the expectation holds the text as generated;
- its preflight mutates nested payload dicts in place, so ``_for_openleadr`` also deep-copies;
- text is generated without control characters (see ``strategies``).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openleadr import enums
from openleadr.messaging import create_message, validate_xml_schema

from adrstack.gateway.codec import model as m
from adrstack.gateway.codec import parse
from adrstack.gateway.codec.names import local
from adrstack.gateway.codec.reader import READERS

from .strategies import (data_qualities, datetimes, durations, floats, market_context, opt_reasons, reading_types,
                         report_types, text, unsigned_ints, x_token)


def _for_openleadr(value):
    """A deep copy of a payload with every string XML-escaped (openleadr's templates don't escape)."""
    if isinstance(value, dict):
        return {k: _for_openleadr(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_openleadr(v) for v in value]
    if isinstance(value, str):
        return escape(value)
    return value


def _optional(strategy):
    return st.one_of(st.none(), strategy)


# openleadr writes responseCode with str(), not zero-padded; the schema wants three digits.
_codes = st.integers(100, 999)


def _responses(request_id=text):
    # responseDescription is always written by openleadr's templates (None would become "None"),
    # and so is the requestID, except in oadrResponse and oadrCreatedEvent (which write an empty
    # element for None).
    return st.fixed_dictionaries({"response_code": _codes, "response_description": text, "request_id": request_id})


def _ei_response(d: dict, *, request_id: str | None = None) -> m.EiResponse:
    # A None requestID is written as an empty element: the codec reads "".
    rid = d["request_id"] if request_id is None else request_id
    return m.EiResponse(response_code=d["response_code"], response_description=d["response_description"],
                        request_id=rid or "")


# --------------------------------------------------------------------------- registration

query_registration = st.fixed_dictionaries({"request_id": text})


def expect_query_registration(p):
    return m.QueryRegistration(request_id=p["request_id"])


# oadrTransportAddress, oadrVenName and oadrHttpPullModel are optional in 2.0b, but openleadr's
# template always writes them (None as "None", and booleanformat(None) raises): always given.
create_party_registration = st.fixed_dictionaries(
    {"request_id": text, "profile_name": st.sampled_from(["2.0a", "2.0b"]),
     "transport_name": st.sampled_from(["simpleHttp", "xmpp"]), "transport_address": text,
     "report_only": st.booleans(), "xml_signature": st.booleans(), "ven_name": text,
     "http_pull_model": st.booleans()},
    optional={"registration_id": text, "ven_id": text})


def expect_create_party_registration(p):
    return m.CreatePartyRegistration(
        request_id=p["request_id"], profile_name=p["profile_name"], transport_name=p["transport_name"],
        report_only=p["report_only"], xml_signature=p["xml_signature"], registration_id=p.get("registration_id"),
        ven_id=p.get("ven_id"), transport_address=p["transport_address"], ven_name=p["ven_name"],
        http_pull_model=p["http_pull_model"])


# venID is optional in 2.0b; openleadr's template always writes it.
cancel_party_registration = st.fixed_dictionaries({"request_id": text, "registration_id": text, "ven_id": text})


def expect_cancel_party_registration(p):
    return m.CancelPartyRegistration(request_id=p["request_id"], registration_id=p["registration_id"],
                                     ven_id=p["ven_id"])


# registrationID and venID: optional in 2.0b, always written by openleadr.
canceled_party_registration = st.fixed_dictionaries({"response": _responses(), "registration_id": text,
                                                     "ven_id": text})


def expect_canceled_party_registration(p):
    return m.CanceledPartyRegistration(response=_ei_response(p["response"]), registration_id=p["registration_id"],
                                       ven_id=p["ven_id"])


# --------------------------------------------------------------------------- events

request_event = st.fixed_dictionaries({"request_id": text, "ven_id": text}, optional={"reply_limit": unsigned_ints})


def expect_request_event(p):
    return m.RequestEvent(request_id=p["request_id"], ven_id=p["ven_id"], reply_limit=p.get("reply_limit"))


_event_responses = st.fixed_dictionaries(
    {"response_code": _codes, "request_id": text, "event_id": text, "modification_number": unsigned_ints,
     "opt_type": st.sampled_from(["optIn", "optOut"])},
    optional={"response_description": text})

created_event = st.fixed_dictionaries(
    {"response": _responses(_optional(text)), "ven_id": text},
    optional={"event_responses": st.lists(_event_responses, max_size=3)})


def expect_created_event(p):
    responses = p.get("event_responses")
    return m.CreatedEvent(
        # openleadr writes the eiResponse's requestID empty whenever there are event responses.
        response=_ei_response(p["response"], request_id="" if responses is not None else None),
        ven_id=p["ven_id"],
        event_responses=[m.EventResponse(
            response_code=r["response_code"], response_description=r.get("response_description"),
            request_id=r["request_id"], event_id=r["event_id"], modification_number=r["modification_number"],
            opt_type=r["opt_type"]) for r in responses or ()])


# --------------------------------------------------------------------------- reports

# The units openleadr's preflight accepts for each named measurement, with the fixed
# description it insists on. Left out: currencyPerKW (openleadr's namespace table spells it
# 'currencyPerWK', so preflight raises "The Measurement Name is unknown").
_MEASURED = [name for name in enums._MEASUREMENT_DESCRIPTIONS if name != "currencyPerKW"]
_scales = st.sampled_from(enums.SI_SCALE_CODE.values)


@st.composite
def _measurements(draw):
    name = draw(st.sampled_from([*_MEASURED, "customUnit"]))
    if name == "customUnit":
        # itemDescription/itemUnits are xs:string, but the codec strips them as tokens;
        # tokens are generated so that stripping is a no-op.
        description, unit = draw(x_token), draw(x_token)
    else:
        description = enums._MEASUREMENT_DESCRIPTIONS[name]
        unit = draw(st.sampled_from(enums._ACCEPTABLE_UNITS[name]))
    measurement = {"name": name, "description": description, "unit": unit, "scale": draw(_scales)}
    if "power" in name:  # preflight requires power attributes for power measurements
        measurement["power_attributes"] = {"hertz": draw(st.sampled_from([50, 60])),
                                           "voltage": draw(st.integers(1, 1000)), "ac": draw(st.booleans())}
    if name == "pulseCount":
        # oadr:pulseCount has pulseFactor where the others have siScaleCode; openleadr writes
        # siScaleCode (which the schema refuses there) unless a truthy pulse_factor is given.
        measurement["pulse_factor"] = draw(st.floats(0.5, 1000))
    return measurement


def _item_base(measurement: dict | None) -> m.ItemBase | None:
    if measurement is None:
        return None
    return m.ItemBase(kind=measurement["name"], description=measurement["description"], units=measurement["unit"],
                      si_scale_code=None if "pulse_factor" in measurement else measurement["scale"])


# reportDataSource: openleadr writes at most one of each kind, only truthy values, and nothing at
# all for an empty dict (the expectation reads {} as "no reportDataSource").
_data_source = st.fixed_dictionaries({}, optional={k: text for k in
                                                   ("group_id", "group_name", "resource_id", "ven_id", "party_id")})


def _descriptions(measurement):
    return st.fixed_dictionaries(
        {"r_id": text, "report_type": report_types, "reading_type": reading_types},
        optional={"report_subject": st.builds(lambda mrid: {"end_device_asset": {"mrid": mrid}}, text),
                  "report_data_source": _data_source,
                  "market_context": market_context,
                  "sampling_rate": st.fixed_dictionaries({"min_period": durations, "max_period": durations,
                                                          "on_change": st.booleans()}),
                  "measurement": measurement})


def _expect_description(d: dict) -> m.ReportDescription:
    source = d.get("report_data_source")
    rate = d.get("sampling_rate")
    return m.ReportDescription(
        r_id=d["r_id"], report_type=d["report_type"], reading_type=d["reading_type"],
        report_subject=(m.Targets(end_device_assets=[d["report_subject"]["end_device_asset"]["mrid"]])
                        if "report_subject" in d else None),
        report_data_source=None if not source else m.Targets(
            group_ids=[source["group_id"]] if "group_id" in source else [],
            group_names=[source["group_name"]] if "group_name" in source else [],
            resource_ids=[source["resource_id"]] if "resource_id" in source else [],
            ven_ids=[source["ven_id"]] if "ven_id" in source else [],
            party_ids=[source["party_id"]] if "party_id" in source else []),
        item_base=_item_base(d.get("measurement")),
        market_context=d.get("market_context"),
        sampling_rate=None if rate is None else m.SamplingRate(rate["min_period"], rate["max_period"],
                                                               rate["on_change"]))


_metadata_reports = st.fixed_dictionaries(
    {"report_name": st.one_of(st.sampled_from(enums.REPORT_NAME.values), x_token), "report_id": text,
     "report_specifier_id": text, "report_request_id": _optional(text), "created_date_time": datetimes,
     "duration": _optional(durations), "report_descriptions": st.lists(_descriptions(_measurements()), max_size=3)})

register_report = st.fixed_dictionaries({"request_id": text, "reports": st.lists(_metadata_reports, max_size=3)},
                                        optional={"ven_id": text})


def expect_register_report(p):
    reports = []
    for r in p["reports"]:
        name = r["report_name"]
        # openleadr's preflight prefixes METADATA_ to a standard report name, and its template
        # leaves eiReportID out of METADATA reports; a missing reportRequestID is written as "0".
        if name in enums.REPORT_NAME.values and not name.startswith("METADATA"):
            name = "METADATA_" + name
        reports.append(m.Report(
            report_request_id="0" if r["report_request_id"] is None else r["report_request_id"],
            report_specifier_id=r["report_specifier_id"], created_at=r["created_date_time"], report_name=name,
            report_id=None if name.startswith("METADATA") else r["report_id"], duration=r["duration"],
            descriptions=[_expect_description(d) for d in r["report_descriptions"]]))
    return m.RegisterReport(request_id=p["request_id"], reports=reports, ven_id=p.get("ven_id"))


# openleadr's oadrUpdateReport template writes exactly one payload per interval, always with a
# dtstart. It runs no preflight, so a description's measurement would lack its namespace
# prefix (broken XML): descriptions in updates come without one.
_payloads = st.fixed_dictionaries(
    {"r_id": text, "value": floats},
    optional={"confidence": st.integers(0, 100), "accuracy": floats, "data_quality": data_qualities})
_intervals = st.fixed_dictionaries({"dtstart": datetimes, "report_payload": _payloads},
                                   optional={"duration": durations})
_data_reports = st.fixed_dictionaries(
    {"report_id": text, "report_request_id": text, "report_specifier_id": text, "created_date_time": datetimes,
     "intervals": st.lists(_intervals, max_size=3)},
    optional={"dtstart": datetimes, "report_name": st.one_of(st.sampled_from(enums.REPORT_NAME.values), x_token),
              "report_descriptions": st.lists(_descriptions(st.nothing()), max_size=2)})

update_report = st.fixed_dictionaries({"request_id": text, "reports": st.lists(_data_reports, max_size=3)},
                                      optional={"ven_id": text})


def expect_update_report(p):
    return m.UpdateReport(request_id=p["request_id"], ven_id=p.get("ven_id"), reports=[m.Report(
        report_request_id=r["report_request_id"], report_specifier_id=r["report_specifier_id"],
        created_at=r["created_date_time"], report_name=r.get("report_name"), report_id=r["report_id"],
        dtstart=r.get("dtstart"),
        descriptions=[_expect_description(d) for d in r.get("report_descriptions", ())],
        intervals=[m.ReportInterval(
            dtstart=i["dtstart"], duration=i.get("duration"),
            payloads=[m.ReportPayload(r_id=i["report_payload"]["r_id"], value=i["report_payload"]["value"],
                                      confidence=i["report_payload"].get("confidence"),
                                      accuracy=i["report_payload"].get("accuracy"),
                                      data_quality=i["report_payload"].get("data_quality"))])
            for i in r["intervals"]])
        for r in p["reports"]])


# reportBackDuration is required by the schema but optional in openleadr's template: always given.
_report_requests = st.fixed_dictionaries({
    "report_request_id": text,
    "report_specifier": st.fixed_dictionaries(
        {"report_specifier_id": text, "granularity": durations, "report_back_duration": durations,
         "specifier_payloads": st.lists(st.fixed_dictionaries({"r_id": text, "reading_type": reading_types}),
                                        min_size=1, max_size=3)},
        optional={"report_interval": st.fixed_dictionaries({"dtstart": datetimes, "duration": durations})}),
})


def _expect_report_request(rr: dict) -> m.ReportRequest:
    spec = rr["report_specifier"]
    interval = spec.get("report_interval") or {}
    return m.ReportRequest(
        report_request_id=rr["report_request_id"], report_specifier_id=spec["report_specifier_id"],
        granularity=spec["granularity"], report_back_duration=spec["report_back_duration"],
        specifier_payloads=[m.SpecifierPayload(r_id=s["r_id"], reading_type=s["reading_type"])
                            for s in spec["specifier_payloads"]],
        interval_start=interval.get("dtstart"), interval_duration=interval.get("duration"))


registered_report = st.fixed_dictionaries({"response": _responses(), "report_requests": st.lists(_report_requests,
                                                                                                max_size=3)},
                                          optional={"ven_id": text})


def expect_registered_report(p):
    return m.RegisteredReport(response=_ei_response(p["response"]), ven_id=p.get("ven_id"),
                              report_requests=[_expect_report_request(rr) for rr in p["report_requests"]])


# venID is optional in 2.0b; openleadr's template always writes it.
create_report = st.fixed_dictionaries({"request_id": text, "ven_id": text,
                                       "report_requests": st.lists(_report_requests, min_size=1, max_size=3)})


def expect_create_report(p):
    return m.CreateReport(request_id=p["request_id"], ven_id=p["ven_id"],
                          report_requests=[_expect_report_request(rr) for rr in p["report_requests"]])


_pending = st.lists(st.builds(lambda i: {"report_request_id": i}, text), max_size=3)
created_report = st.fixed_dictionaries({"response": _responses(), "pending_reports": _pending},
                                       optional={"ven_id": text})
canceled_report = created_report


def expect_created_report(p):
    return m.CreatedReport(response=_ei_response(p["response"]), ven_id=p.get("ven_id"),
                           pending_reports=[r["report_request_id"] for r in p["pending_reports"]])


def expect_canceled_report(p):
    return m.CanceledReport(response=_ei_response(p["response"]), ven_id=p.get("ven_id"),
                            pending_reports=[r["report_request_id"] for r in p["pending_reports"]])


# openleadr's template writes one reportRequestID (the schema allows several) and always a venID.
cancel_report = st.fixed_dictionaries({"request_id": text, "report_request_id": text,
                                       "report_to_follow": st.booleans(), "ven_id": text})


def expect_cancel_report(p):
    return m.CancelReport(request_id=p["request_id"], report_request_ids=[p["report_request_id"]],
                          report_to_follow=p["report_to_follow"], ven_id=p["ven_id"])


# --------------------------------------------------------------------------- opt

_TARGET_KEYS = ("group_id", "group_name", "resource_id", "ven_id", "party_id")

# openleadr writes one eiTarget per dict in 'targets', and oadrCreateOpt holds exactly one: so
# no targets (an empty eiTarget) or one dict, with at most one of each kind.
_create_opt_base = st.fixed_dictionaries(
    {"opt_id": text, "opt_type": st.sampled_from(["optIn", "optOut"]), "opt_reason": opt_reasons, "ven_id": text,
     "created_date_time": datetimes, "request_id": text,
     "targets": st.one_of(st.none(), st.just([]),
                          st.fixed_dictionaries({}, optional={k: text for k in _TARGET_KEYS}).map(lambda t: [t]))},
    optional={"market_context": market_context,
              "vavailability": st.builds(lambda c: {"components": c}, st.lists(
                  st.fixed_dictionaries({"dtstart": datetimes, "duration": durations}), max_size=3)),
              "signal_target_mrid": text})


@st.composite
def create_opt(draw):
    payload = draw(_create_opt_base)
    if draw(st.booleans()):  # a qualifiedEventID: both parts or neither
        payload["event_id"], payload["modification_number"] = draw(text), draw(unsigned_ints)
    return payload


def expect_create_opt(p):
    target = (p["targets"] or [{}])[0]
    availability = p.get("vavailability")
    return m.CreateOpt(
        opt_id=p["opt_id"], opt_type=p["opt_type"], opt_reason=p["opt_reason"], ven_id=p["ven_id"],
        created_at=p["created_date_time"], request_id=p["request_id"],
        targets=m.Targets(**{f"{k}s": [target[k]] if k in target else [] for k in _TARGET_KEYS}),
        market_context=p.get("market_context"),
        availability=None if availability is None else [
            m.Availability(dtstart=c["dtstart"], duration=c["duration"]) for c in availability["components"]],
        event_id=p.get("event_id"), modification_number=p.get("modification_number"),
        device_class=(m.Targets(end_device_assets=[p["signal_target_mrid"]]) if "signal_target_mrid" in p
                      else None))


cancel_opt = st.fixed_dictionaries({"request_id": text, "opt_id": text, "ven_id": text})


def expect_cancel_opt(p):
    return m.CancelOpt(request_id=p["request_id"], opt_id=p["opt_id"], ven_id=p["ven_id"])


# --------------------------------------------------------------------------- poll, response

poll = st.fixed_dictionaries({"ven_id": text})


def expect_poll(p):
    return m.Poll(ven_id=p["ven_id"])


# venID is optional in 2.0b; openleadr's template always writes it.
response = st.fixed_dictionaries({"response": _responses(_optional(text)), "ven_id": text})


def expect_response(p):
    return m.Response(response=_ei_response(p["response"]), ven_id=p["ven_id"])


CASES = {
    "oadrQueryRegistration": (query_registration, expect_query_registration),
    "oadrCreatePartyRegistration": (create_party_registration, expect_create_party_registration),
    "oadrCancelPartyRegistration": (cancel_party_registration, expect_cancel_party_registration),
    "oadrCanceledPartyRegistration": (canceled_party_registration, expect_canceled_party_registration),
    "oadrRequestEvent": (request_event, expect_request_event),
    "oadrCreatedEvent": (created_event, expect_created_event),
    "oadrRegisterReport": (register_report, expect_register_report),
    "oadrRegisteredReport": (registered_report, expect_registered_report),
    "oadrUpdateReport": (update_report, expect_update_report),
    "oadrCreatedReport": (created_report, expect_created_report),
    "oadrCanceledReport": (canceled_report, expect_canceled_report),
    "oadrCancelReport": (cancel_report, expect_cancel_report),
    "oadrCreateReport": (create_report, expect_create_report),
    "oadrCreateOpt": (create_opt(), expect_create_opt),
    "oadrCancelOpt": (cancel_opt, expect_cancel_opt),
    "oadrPoll": (poll, expect_poll),
    "oadrResponse": (response, expect_response),
}


def test_every_message_a_vtn_reads_is_covered():
    assert set(CASES) == {local(tag) for tag in READERS}


@pytest.mark.parametrize("message_type", list(CASES))
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_we_read_what_openleadr_writes(message_type, data):
    strategy, expect = CASES[message_type]
    payload = data.draw(strategy, label="payload")
    xml = create_message(message_type, **_for_openleadr(payload))
    validate_xml_schema(xml)  # a failure here is openleadr's: the strategy must keep clear of it
    envelope = parse(xml.encode("utf-8"))
    assert envelope.message_type == message_type
    assert envelope.signature is None
    assert envelope.message == expect(payload)
