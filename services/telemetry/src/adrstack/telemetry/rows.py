"""Facts -> rows, collected per table for one batch (pure: no database here).

Everything a batch holds is written in one transaction by :mod:`.store`. Rows with a natural
key are collapsed inside the batch to the one that must win, so a single multi-row statement
never touches the same row twice; readings are kept as tuples in ``READING_COLUMNS`` order, the
rows :mod:`.store` copies into its staging table, one per point: the first one in stream order
(first wins, as in the table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adrstack.shared.messages import (
    DrEvent,
    EventTransition,
    Message,
    OptResponse,
    OptSchedule,
    PushFailed,
    ReportData,
    ReportRequestChanged,
    ReportsRegistered,
    ReportStatus,
    VenDeregistered,
    VenRegistered,
    VenSeen,
)

from .status import status_rows
from . import report_requests

# A DR event's status only moves forward within one modification number; cancelled is last.
STATUS_ORDER = ("far", "near", "active", "completed", "cancelled")

READING_COLUMNS = (
    "ven_id",
    "report_specifier_id",
    "r_id",
    "resource_id",
    "measurement",
    "unit",
    "at",
    "value",
    "received_at",
)


def status_rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else -1


def event_order(event: DrEvent) -> tuple[int, int]:
    """Snapshots compare by this key; a snapshot never replaces one with a greater key."""
    return (event.modification_number, status_rank(event.status.value))


def ven_registered_row(fact: VenRegistered) -> dict[str, Any]:
    return {
        "ven_id": fact.ven_id,
        "ven_name": fact.ven_name,
        "registration_id": fact.registration_id,
        "registered_at": fact.occurred_at,
        "profile_name": fact.profile_name,
        "transport_name": fact.transport_name,
        "http_pull_model": fact.http_pull_model,
        "report_only": fact.report_only,
        # updated_at = when the registration state last changed: orders (de)registrations.
        "updated_at": fact.occurred_at,
    }


def dr_event_row(event: DrEvent) -> dict[str, Any]:
    snapshot = event.model_dump(mode="json")
    return {
        "event_id": event.event_id,
        "modification_number": event.modification_number,
        "status": event.status.value,
        "signal_name": event.signal_name,
        "signal_type": event.signal_type,
        "start_at": event.start_at,
        "end_at": event.end_at,
        "intervals": snapshot["intervals"],
        "targets": snapshot["targets"],
        "priority": event.priority,
        "market_context": event.market_context,
        "response_required": event.response_required,
        "created_at": event.created_at,
        "modified_at": event.modified_at,
        "snapshot": snapshot,
    }


def transition_row(fact: EventTransition) -> dict[str, Any]:
    return {
        "id": fact.id,
        "event_id": fact.event_id,
        "transition": fact.transition.value,
        "modification_number": fact.event.modification_number,
        "status": fact.event.status.value,
        "occurred_at": fact.occurred_at,
    }


def response_row(fact: OptResponse) -> dict[str, Any]:
    return {
        "id": fact.id,
        "ven_id": fact.ven_id,
        "event_id": fact.event_id,
        "modification_number": fact.modification_number,
        "opt_type": fact.opt_type,
        "source": fact.source,
        "responded_at": fact.occurred_at,
    }


def opt_schedule_row(fact: OptSchedule) -> dict[str, Any]:
    return {
        "ven_id": fact.ven_id,
        "opt_id": fact.opt_id,
        "opt_type": fact.opt_type,
        "opt_reason": fact.opt_reason,
        "market_context": fact.market_context,
        "event_id": fact.event_id,
        "modification_number": fact.modification_number,
        "resource_ids": list(fact.resource_ids),
        "device_classes": list(fact.device_classes),
        "windows": [{"start": w.start.isoformat(), "duration_seconds": w.duration_seconds} for w in fact.windows],
        "sent_at": fact.occurred_at,
        "cancelled_at": fact.occurred_at if fact.cancelled else None,
    }


@dataclass
class RowBatch:
    # (kind, row) in stream order: registration state depends on the order of its facts.
    ven_changes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    seen: dict[str, datetime] = field(default_factory=dict)
    # (ven_id, report_specifier_id, r_id, at) -> the batch's first reading of that point, as a
    # tuple in READING_COLUMNS order.
    points: dict[tuple[str, str, str, datetime], tuple[Any, ...]] = field(default_factory=dict)
    descriptions: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, tuple[tuple[int, int], dict[str, Any]]] = field(default_factory=dict)
    push_failures: list[dict[str, Any]] = field(default_factory=list)
    # (ven_id, opt_id) -> the latest version in this batch
    opt_schedules: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # TELEMETRY_STATUS points (adrstack.telemetry.status), in stream order.
    statuses: list[dict[str, Any]] = field(default_factory=list)
    # (ven_id, report_request_id) -> the newest version in this batch
    report_requests: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, facts: list[Message]) -> "RowBatch":
        batch = cls()
        for fact in facts:
            batch.add(fact)
        return batch

    @property
    def readings(self) -> list[tuple[Any, ...]]:
        return list(self.points.values())

    @property
    def reading_count(self) -> int:
        return len(self.points)

    def add(self, fact: Message) -> None:
        if isinstance(fact, VenRegistered):
            self.ven_changes.append(("registered", ven_registered_row(fact)))
        elif isinstance(fact, VenDeregistered):
            self.ven_changes.append(("deregistered", {"ven_id": fact.ven_id, "at": fact.occurred_at}))
        elif isinstance(fact, VenSeen):
            previous = self.seen.get(fact.ven_id)
            if previous is None or fact.occurred_at > previous:
                self.seen[fact.ven_id] = fact.occurred_at
        elif isinstance(fact, ReportData):
            self._add_readings(fact)
        elif isinstance(fact, ReportsRegistered):
            for d in fact.reports:
                key = (fact.ven_id, d.report_specifier_id, d.r_id)
                previous = self.descriptions.get(key)
                if previous is None or fact.occurred_at >= previous["registered_at"]:
                    self.descriptions[key] = {
                        "ven_id": fact.ven_id,
                        "report_specifier_id": d.report_specifier_id,
                        "r_id": d.r_id,
                        "report_name": d.report_name,
                        "resource_id": d.resource_id,
                        "report_type": d.report_type,
                        "reading_type": d.reading_type,
                        "measurement": d.measurement,
                        "unit": d.unit,
                        "scale": d.scale,
                        "registered_at": fact.occurred_at,
                    }
        elif isinstance(fact, OptResponse):
            self.responses.append(response_row(fact))
        elif isinstance(fact, OptSchedule):
            key = (fact.ven_id, fact.opt_id)
            previous = self.opt_schedules.get(key)
            if previous is None or fact.occurred_at >= previous["sent_at"]:
                self.opt_schedules[key] = opt_schedule_row(fact)
        elif isinstance(fact, EventTransition):
            self.transitions.append(transition_row(fact))
            order = event_order(fact.event)
            previous = self.events.get(fact.event_id)
            if previous is None or order >= previous[0]:
                self.events[fact.event_id] = (order, dr_event_row(fact.event))
        elif isinstance(fact, ReportStatus):
            self.statuses += status_rows(fact)
        elif isinstance(fact, PushFailed):
            self.push_failures.append({
                "id": fact.id, "ven_id": fact.ven_id, "event_ids": list(fact.event_ids), "attempt": fact.attempt,
                "error": fact.error, "http_status": fact.http_status, "gave_up": fact.gave_up,
                "occurred_at": fact.occurred_at})
        elif isinstance(fact, ReportRequestChanged):
            report_requests.collect(self.report_requests, fact)
        else:
            raise TypeError(f"no rows for {type(fact).__name__}")

    def _add_readings(self, fact: ReportData) -> None:
        ven_id, received_at, points = fact.ven_id, fact.occurred_at, self.points
        for r in fact.readings:
            key = (ven_id, r.report_specifier_id, r.r_id, r.at)
            if key not in points:
                points[key] = (ven_id, r.report_specifier_id, r.r_id, r.resource_id, r.measurement, r.unit, r.at,
                               r.value, received_at)
