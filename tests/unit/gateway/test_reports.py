"""Report metadata, report requests and readings from openleadr's parsed payloads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adrstack.gateway import reports
from adrstack.gateway.registry import ReportRecord

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def register_payload(min_period=timedelta(seconds=1), max_period=timedelta(minutes=1), name="METADATA_TELEMETRY_USAGE"):
    return {"ven_id": "v", "reports": [{
        "report_name": name, "report_specifier_id": "usage-1",
        "report_descriptions": [
            {"r_id": "p1", "reading_type": "Direct Read", "report_type": "reading",
             "report_data_source": {"resource_id": "meter-1"},
             "measurement": {"name": "customUnit", "description": "RealPower", "unit": "W", "scale": "none"},
             "sampling_rate": {"min_period": min_period, "max_period": max_period, "on_change": False}},
            {"r_id": "p2", "reading_type": "Direct Read", "report_type": "reading",
             "report_data_source": {"resource_id": "meter-2"},
             "measurement": {"name": "energyReal", "description": "RealEnergy", "unit": "Wh", "scale": "k"},
             "sampling_rate": {"min_period": min_period, "max_period": max_period, "on_change": False}},
        ]}]}


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
    spec = request.as_openadr()["report_specifier"]
    assert spec["report_specifier_id"] == "usage-1" and len(spec["specifier_payloads"]) == 2


def test_history_reports_are_not_requested():
    offered = reports.descriptions(register_payload(name="METADATA_HISTORY_USAGE"))
    assert reports.report_requests(offered, timedelta(seconds=10)) == []


def test_readings_take_unit_and_measurement_from_the_metadata():
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = {"report_specifier_id": "usage-1", "report_request_id": "rr",
              "intervals": [{"dtstart": NOW, "report_payload": {"r_id": "p1", "value": 5}},
                            {"report_payload": {"r_id": "p2", "value": 2.5}}]}
    got = reports.readings(report, known, NOW + timedelta(seconds=9))
    assert [(r.r_id, r.value, r.unit, r.measurement, r.resource_id, r.at) for r in got] == [
        ("p1", 5.0, "W", "RealPower", "meter-1", NOW),
        ("p2", 2.5, "Wh", "RealEnergy", "meter-2", NOW + timedelta(seconds=9))]


@pytest.mark.parametrize("spec,r_id", [("usage-1", "unknown"), ("never-registered", "nope")])
def test_data_for_undeclared_points_is_refused(spec, r_id):
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = {"report_specifier_id": spec,
              "intervals": [{"dtstart": NOW, "report_payload": {"r_id": r_id, "value": 1.0}}]}
    with pytest.raises(reports.UnregisteredDataPoint, match=r_id):
        reports.readings(report, known, NOW)


def test_non_numeric_values_are_invalid():
    with pytest.raises(ValueError):
        reports.readings({"report_specifier_id": "s", "intervals": [{"report_payload": {"r_id": "p", "value": "x"}}]},
                         ReportRecord(), NOW)


def test_resent_readings_get_the_same_message_id():
    known = ReportRecord(reports=reports.descriptions(register_payload()))
    report = {"report_specifier_id": "usage-1",
              "intervals": [{"dtstart": NOW, "report_payload": {"r_id": "p1", "value": 1}}]}
    a = reports.readings(report, known, NOW)
    b = reports.readings(report, known, NOW)
    assert reports.report_data_id("v", "usage-1", a) == reports.report_data_id("v", "usage-1", b)
    assert reports.report_data_id("v", "usage-1", a) != reports.report_data_id("w", "usage-1", a)
