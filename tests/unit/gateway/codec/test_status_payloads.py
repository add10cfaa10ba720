"""TELEMETRY_STATUS payloads and the readings cap of oadrUpdateReport, read by the codec."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from adrstack.gateway.codec import InvalidContent, parse
from adrstack.gateway.codec import model as m
from adrstack.gateway.codec.reader import MAX_UPDATE_READINGS
from tests.report_xml import many_readings_update, resource_status, status_update

AT = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


def test_a_resource_status_is_read_with_its_load_control_state():
    body = status_update("ven-1", report_request_id="rr-1", report_specifier_id="status-1", r_id="s1", statuses=[
        (AT, resource_status(True, False, Capacity={"current": 3.5, "normal": 4, "min": 0, "max": 10},
                             PercentOffset={"current": -20}))])
    [report] = parse(body).message.reports
    [payload] = report.intervals[0].payloads
    assert payload.r_id == "s1"
    assert payload.value == m.ResourceStatus(online=True, manual_override=False, load_control_state={
        "Capacity": {"current": 3.5, "normal": 4.0, "min": 0.0, "max": 10.0}, "PercentOffset": {"current": -20.0}})


@pytest.mark.parametrize("values, what", [
    ({"current": "NaN"}, "oadrCurrent"),
    ({"current": 1, "min": 5, "max": 2}, "oadrMin is above oadrMax"),
])
def test_unusable_load_control_values_are_refused(values, what):
    body = status_update("ven-1", report_request_id="rr-1", report_specifier_id="status-1", r_id="s1",
                         statuses=[(AT, resource_status(True, True, SetPoint=values))])
    with pytest.raises(InvalidContent) as e:
        parse(body)
    assert what in e.value.description and e.value.message_type == "oadrUpdateReport"


def test_the_readings_cap_refuses_one_more_and_accepts_the_cap():
    kwargs = dict(report_request_id="rr-1", report_specifier_id="usage-1", r_id="p1", at=AT)
    [report] = parse(many_readings_update("ven-1", count=MAX_UPDATE_READINGS, **kwargs)).message.reports
    assert len(report.intervals[0].payloads) == MAX_UPDATE_READINGS
    with pytest.raises(InvalidContent) as e:
        parse(many_readings_update("ven-1", count=MAX_UPDATE_READINGS + 1, **kwargs))
    assert f"more than {MAX_UPDATE_READINGS} readings" in e.value.description
    assert e.value.ven_id == "ven-1"


def test_an_absurd_report_is_refused_before_its_readings_are_built():
    body = many_readings_update("ven-1", report_request_id="rr-1", report_specifier_id="usage-1", r_id="p1", at=AT,
                                count=10 * MAX_UPDATE_READINGS)
    started = time.perf_counter()
    with pytest.raises(InvalidContent):
        parse(body)
    # Parse and validation only (~0.1 s for 10 MB here); extracting 100,000 payloads would take longer.
    assert time.perf_counter() - started < 2.0
