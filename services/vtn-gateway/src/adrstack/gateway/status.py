"""TELEMETRY_STATUS: the resource statuses ``reports.points`` set aside, as one ReportStatus fact
per oadrReport (pure logic)."""

from __future__ import annotations

from datetime import datetime

from adrstack.shared.messages import LoadControl, LoadControlValue, ReportStatus, ResourceStatus, derived_id

from .codec import model as m

# The codec names oadrLoadControlState's children by their local name without "oadr".
_KINDS = {"Capacity": "capacity", "LevelOffset": "level_offset", "PercentOffset": "percent_offset",
          "SetPoint": "set_point"}

Found = tuple[str, datetime, m.ResourceStatus, "str | None"]


def load_control(state: dict[str, dict[str, float]]) -> LoadControl:
    return LoadControl(**{_KINDS[kind]: LoadControlValue(**values) for kind, values in state.items() if kind in _KINDS})


def report_status(ven_id: str, report: m.Report, found: list[Found], now: datetime) -> ReportStatus:
    statuses = [ResourceStatus(r_id=r_id, at=at, online=s.online, manual_override=s.manual_override,
                               load_control=load_control(s.load_control_state), resource_id=resource_id)
                for r_id, at, s, resource_id in found]
    # From the content alone (not the receive time): a VEN re-sending the report gets the same
    # Nats-Msg-Id, and the stream's duplicate window drops the copy.
    content = sorted(f"{s.r_id}@{s.at.isoformat()}={s.model_dump_json(exclude={'r_id', 'at'})}" for s in statuses)
    return ReportStatus(id=derived_id("report.status", ven_id, report.report_specifier_id, *content),
                        occurred_at=now, ven_id=ven_id, report_request_id=report.report_request_id or None,
                        report_specifier_id=report.report_specifier_id, report_name=report.report_name,
                        statuses=statuses)
