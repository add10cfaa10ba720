"""Deciding, on each poll, whether a VEN must be sent oadrDistributeEvent (pure logic).

The record of what a VEN was last told lives in the vens KV bucket (delivery_key), so a
restarted gateway or another replica makes the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field

from adrstack.shared.lifecycle import TERMINAL, status_at
from adrstack.shared.messages import DrEvent, EventStatus


class DeliveryRecord(BaseModel):
    # event_id -> (modification_number, status) the VEN was last told, for events still pending for it.
    pending: dict[str, tuple[int, EventStatus]] = Field(default_factory=dict)
    delivered_at: AwareDatetime | None = None
    seen_at: AwareDatetime | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


@dataclass
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
    new = record.model_copy(update={"pending": pending, "delivered_at": now if changed else record.delivered_at})
    return DeliveryPlan(items=items, record=new, changed=changed)


def seen_due(record: DeliveryRecord, now: datetime, interval: timedelta) -> bool:
    return record.seen_at is None or now - record.seen_at >= interval or record.seen_at > now
