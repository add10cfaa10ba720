"""Report metadata, report requests and readings from the codec's typed reports."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adrstack.gateway import reports
from adrstack.gateway.codec import model as m
from adrstack.gateway.state import ReportRecord
from adrstack.shared.messages import ReportData, utcnow

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def point(r_id, resource, kind, description, unit, scale, low, high) -> m.ReportDescription:
    return m.ReportDescription(
        r_id=r_id, report_type="reading", reading_type="Direct Read",
        report_data_source=m.Targets(resource_ids=[resource]),
        item_base=m.ItemBase(kind=kind, description=description, units=unit, si_scale_code=scale),
        sampling_rate=m.SamplingRate(min_period=low, max_period=high, on_change=False))


def register_payload(min_period=timedelta(seconds=1), max_period=timedelta(minutes=1), name="METADATA_TELEMETRY_USAGE"):
    return [m.Report(report_request_id="0", report_specifier_id="usage-1", created_at=NOW, report_name=name,
                     descriptions=[point("p1", "meter-1", "customUnit", "RealPower", "W", "none", min_period, max_period),
                                   point("p2", "meter-2", "energyReal", "RealEnergy", "Wh", "k", min_period, max_period)])]


def data_report(spec, *intervals, dtstart=None) -> m.Report:
    return m.Report(report_request_id="rr", report_specifier_id=spec, created_at=NOW, dtstart=dtstart,
                    intervals=[m.ReportInterval(payloads=[m.ReportPayload(r_id=r, value=v)], dtstart=at)
                               for r, v, at in intervals])


def test_one_description_per_r_id():
    got = reports.descriptions(register_payload())
    [(spec, items)] = got.items()
    assert spec == "usage-1"
    assert [(d.r_id, d.report_name, d.resource_id, d.measurement, d.unit, d.scale) for d in items] == [
        ("p1", "TELEMETRY_USAGE", "meter-1", "RealPower", "W", "none"),
        ("p2", "TELEMETRY_USAGE", "meter-2", "RealEnergy", "Wh", "k")]
    assert items[0].min_sampling_period == timedelta(seconds=1)


@pytest.mark.parametrize("wanted,low,high,granularity,back", [
    (10, 1, 60, 10, 10),     # what we want fits
    (10, 30, 60, 30, 30),    # VEN cannot sample that fast
    (10, 1, 5, 5, 10),       # VEN samples at most every 5 s: batch two samples per report
    (10, 1, 3, 3, 3),        # 10 is not a multiple of 3: report every sample
])
def test_requests_clamp_to_what_the_ven_offers(wanted, low, high, granularity, back):
    offered = reports.descriptions(register_payload(timedelta(seconds=low), timedelta(seconds=high)))
    [request] = reports.report_requests(offered, timedelta(seconds=wanted))
    assert request.granularity == timedelta(seconds=granularity)
    assert request.report_back_duration == timedelta(seconds=back)
    assert request.r_ids == [("p1", "Direct Read"), ("p2", "Direct Read")]
    sent = reports.as_codec_request(request)
    assert sent.report_specifier_id == "usage-1"
    assert [(p.r_id, p.reading_type) for p in sent.specifier_payloads] == [("p1", "x-notApplicable"),
                                                                         ("p2", "x-notApplicable")]


def test_a_minimum_period_wins_over_another_points_maximum():
    fast, slow = register_payload()[0].descriptions
    slow.sampling_rate = m.SamplingRate(timedelta(seconds=30), timedelta(minutes=5), False)
    fast.sampling_rate = m.SamplingRate(timedelta(seconds=1), timedelta(seconds=5), False)
    offered = reports.descriptions([m.Report("0", "usage-1", NOW, "METADATA_TELEMETRY_USAGE",
                                             descriptions=[fast, slow])])
    [request] = reports.report_requests(offered, timedelta(seconds=10))
    assert request.granularity == timedelta(seconds=30)


def test_a_periodic_request_carries_its_report_interval_and_a_one_shot_none():
    offered = reports.descriptions(register_payload())
    [request] = reports.report_requests(offered, timedelta(seconds=10))
    sent = reports.as_codec_request(request)
    assert (sent.interval_start, sent.interval_duration) == (request.created_at, timedelta(0))
    one_shot = reports.as_codec_request(request.model_copy(update={"granularity": timedelta(0)}))
    assert (one_shot.interval_start, one_shot.interval_duration) == (None, None)


def requested(rr_id, spec="METADATA"):
    return m.ReportRequest(rr_id, spec, timedelta(0), timedelta(0), [m.SpecifierPayload("x", "x-notApplicable")])


def test_a_ven_may_ask_the_vtn_for_its_metadata_only():
    assert reports.source_request_ids([requested("a"), requested("b")]) == ["a", "b"]
    for bad in ([requested("a"), requested("b", "TELEMETRY_USAGE")], [requested("")], [requested("0")],
                [requested("x" * 257)], []):
        with pytest.raises(reports.UnknownReport):
            reports.source_request_ids(bad)


def test_rule_304_data_only_for_requests_the_record_holds():
    offered = reports.descriptions(register_payload())
    [request] = reports.report_requests(offered, timedelta(seconds=10))
    record = ReportRecord(reports=offered, requests=[request])
    assert record.accepts_data(request.report_request_id)
    assert not record.accepts_data("rr-other") and not record.accepts_data("0")
    acknowledged = record.model_copy(update={"requests": [request.model_copy(update={"acknowledged_at": utcnow()})]})
    assert acknowledged.accepts_data(request.report_request_id)


def test_history_reports_are_not_requested():
    offered = reports.descriptions(register_payload(name="METADATA_HISTORY_USAGE"))
    assert reports.report_requests(offered, timedelta(seconds=10)) == []


def test_readings_take_unit_and_measurement_from_the_metadata():
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = data_report("usage-1", ("p1", 5.0, NOW), ("p2", 2.5, None))
    got = reports.readings(report, known, NOW + timedelta(seconds=9))
    assert [(r.r_id, r.value, r.unit, r.measurement, r.resource_id, r.at) for r in got] == [
        ("p1", 5.0, "W", "RealPower", "meter-1", NOW),
        ("p2", 2.5, "Wh", "RealEnergy", "meter-2", NOW + timedelta(seconds=9))]


@pytest.mark.parametrize("spec,r_id", [("usage-1", "unknown"), ("never-registered", "nope")])
def test_data_for_undeclared_points_is_refused(spec, r_id):
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = data_report(spec, (r_id, 1.0, NOW))
    with pytest.raises(reports.UnregisteredDataPoint, match=r_id):
        reports.readings(report, known, NOW)


def test_an_interval_without_dtstart_takes_the_reports():
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = data_report("usage-1", ("p1", 1.0, None), dtstart=NOW - timedelta(minutes=5))
    [reading] = reports.readings(report, known, NOW)
    assert reading.at == NOW - timedelta(minutes=5)


def test_resource_status_is_no_reading():
    # Statuses are set aside only for a caller that takes them (tests/unit/gateway/test_status.py).
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = data_report("usage-1", ("p1", m.ResourceStatus(online=True, manual_override=False), NOW))
    with pytest.raises(reports.UnsupportedPayload):
        reports.readings(report, known, NOW)


def test_resent_readings_get_the_same_message_id():
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = data_report("usage-1", ("p1", 1.0, NOW))
    a = reports.readings(report, known, NOW)
    b = reports.readings(report, known, NOW)
    assert reports.report_data_id("v", "usage-1", a) == reports.report_data_id("v", "usage-1", b)
    assert reports.report_data_id("v", "usage-1", a) != reports.report_data_id("w", "usage-1", a)


@pytest.mark.parametrize("value, at", [
    (1.5, NOW), (-0.0, NOW), (1e16, NOW + timedelta(microseconds=7)), (123456789.125, NOW + timedelta(days=400)),
    (3, NOW), (5e-324, datetime(2001, 1, 1, 0, 0, 1, 500000, tzinfo=timezone.utc)),
])
def test_fact_bytes_are_the_report_data_models(value, at):
    """The hot path's bytes are what ReportData(...).to_bytes() makes, id included."""
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = data_report("usage-1", ("p1", value, at), ("p2", 2.0, at + timedelta(seconds=1)), ("p1", value, None),
                         dtstart=NOW - timedelta(hours=1))
    report.report_name = 'TELEMETRY_USAGE "quoted" é'
    items = reports.points(report, known, NOW)
    [(msg_id, payload)] = reports.report_data_facts("ven-1", report, items, 1000, occurred_at=NOW)
    readings = reports.readings(report, known, NOW)
    model = ReportData(id=reports.report_data_id("ven-1", "usage-1", readings), occurred_at=NOW, ven_id="ven-1",
                       report_request_id="rr", report_specifier_id="usage-1", report_name=report.report_name,
                       readings=readings)
    assert payload == model.to_bytes()
    assert msg_id == model.msg_id
    assert ReportData.model_validate_json(payload) == model


def test_facts_are_cut_at_the_per_fact_limit_with_ids_per_chunk():
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = data_report("usage-1", *[("p1", float(i), NOW + timedelta(seconds=i)) for i in range(5)])
    items = reports.points(report, known, NOW)
    facts = reports.report_data_facts("ven-1", report, items, 2, occurred_at=NOW)
    assert [len(ReportData.model_validate_json(p).readings) for _, p in facts] == [2, 2, 1]
    assert len({msg_id for msg_id, _ in facts}) == 3
    # Re-sent: the same ids, whenever it arrives.
    again = reports.report_data_facts("ven-1", report, reports.points(report, known, NOW), 2,
                                      occurred_at=NOW + timedelta(minutes=1))
    assert [i for i, _ in again] == [i for i, _ in facts]
