"""Deciding, on each poll, whether a VEN must be sent oadrDistributeEvent (pure logic).

The record of what a VEN was last told lives in the vens KV bucket (``delivery.<ven_id>``),
so a restarted gateway or another replica makes the same decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from adrstack.shared.lifecycle import TERMINAL, status_at
from adrstack.shared.messages import DrEvent, EventStatus


class DeliveryRecord:
    """event_id -> (modification_number, status) the VEN was last told, for events still pending
    for it. A slotted class with hand-written JSON: one per VEN that ever got an event."""

    __slots__ = ("pending", "delivered_at")

    def __init__(self, pending: dict[str, tuple[int, EventStatus]] | None = None,
                 delivered_at: datetime | None = None):
        self.pending = pending if pending is not None else {}
        self.delivered_at = delivered_at

    def to_bytes(self) -> bytes:
        return json.dumps({
            "pending": {event_id: [mod, status.value] for event_id, (mod, status) in self.pending.items()},
            "delivered_at": None if self.delivered_at is None else self.delivered_at.isoformat(),
        }).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> "DeliveryRecord":
        data = json.loads(raw)
        pending = {str(k): (int(v[0]), EventStatus(v[1])) for k, v in (data.get("pending") or {}).items()}
        at = data.get("delivered_at")
        return cls(pending, datetime.fromisoformat(at) if at else None)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, DeliveryRecord) and self.pending == other.pending
                and self.delivered_at == other.delivered_at)

    def __repr__(self) -> str:
        return f"DeliveryRecord(pending={self.pending!r}, delivered_at={self.delivered_at!r})"


@dataclass(slots=True)
class DeliveryPlan:
    items: list[tuple[DrEvent, EventStatus]]  # what the VEN should be shown now
    record: DeliveryRecord  # the record after showing it
    changed: bool  # whether the VEN's view differs from what it was last told


def plan_delivery(events: list[DrEvent], record: DeliveryRecord, now: datetime) -> DeliveryPlan:
    """``events`` are the events targeting the VEN. A terminal event (completed/cancelled) is shown
    once, and only to a VEN that was told about it while it was pending; then it is dropped."""
    items: list[tuple[DrEvent, EventStatus]] = []
    pending: dict[str, tuple[int, EventStatus]] = {}
    shows_terminal = False
    for event in events:
        status = status_at(event, now)
        if status in TERMINAL:
            if event.event_id not in record.pending:
                continue
            shows_terminal = True
        else:
            pending[event.event_id] = (event.modification_number, status)
        items.append((event, status))
    changed = shows_terminal or pending != record.pending
    if not changed:
        return DeliveryPlan(items=items, record=record, changed=False)
    return DeliveryPlan(items=items, record=DeliveryRecord(pending, now), changed=True)
