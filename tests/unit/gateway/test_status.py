"""TELEMETRY_STATUS payloads set aside by reports.points and made into ReportStatus facts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.gateway import reports, status
from adrstack.gateway.codec import model as m
from adrstack.gateway.state import ReportRecord
from adrstack.shared.messages import ReportStatus, decode

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def status_metadata() -> ReportRecord:
    desc = m.ReportDescription(r_id="s1", report_type="x-resourceStatus", reading_type="x-notApplicable",
                               report_data_source=m.Targets(resource_ids=["heat-pump"]))
    return ReportRecord(reports=reports.descriptions([m.Report(
        report_request_id="0", report_specifier_id="status-1", created_at=NOW,
        report_name="METADATA_TELEMETRY_STATUS", descriptions=[desc])]))


def status_report(*items) -> m.Report:
    return m.Report(report_request_id="rr-1", report_specifier_id="status-1", created_at=NOW,
                    report_name="TELEMETRY_STATUS",
                    intervals=[m.ReportInterval(payloads=[m.ReportPayload(r_id="s1", value=v)], dtstart=at)
                               for v, at in items])


def test_statuses_are_set_aside_and_become_one_fact():
    online = m.ResourceStatus(online=True, manual_override=False,
                              load_control_state={"LevelOffset": {"current": 2.0, "normal": 0.0}})
    later = m.ResourceStatus(online=False, manual_override=True)
    found: list = []
    items = reports.points(status_report((online, NOW), (later, NOW + timedelta(minutes=1))), status_metadata(),
                           NOW, found)
    assert items == []
    fact = status.report_status("ven-1", status_report(), found, NOW)
    assert [(s.r_id, s.at, s.online, s.manual_override, s.resource_id) for s in fact.statuses] == [
        ("s1", NOW, True, False, "heat-pump"), ("s1", NOW + timedelta(minutes=1), False, True, "heat-pump")]
    assert fact.statuses[0].load_control.level_offset.current == 2.0
    assert fact.statuses[0].load_control.capacity is None
    assert decode(ReportStatus, fact.to_bytes()) == fact


def test_a_resent_status_report_gets_the_same_message_id_and_a_changed_one_another():
    def fact(value: m.ResourceStatus, received: datetime) -> ReportStatus:
        found: list = []
        reports.points(status_report((value, NOW)), status_metadata(), received, found)
        return status.report_status("ven-1", status_report(), found, received)

    a = fact(m.ResourceStatus(online=True, manual_override=False), NOW)
    again = fact(m.ResourceStatus(online=True, manual_override=False), NOW + timedelta(seconds=30))
    changed = fact(m.ResourceStatus(online=False, manual_override=False), NOW)
    assert a.msg_id == again.msg_id
    assert a.msg_id != changed.msg_id
