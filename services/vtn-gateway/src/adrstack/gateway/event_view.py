"""What a VEN is shown of a DrEvent: the oadrEvent dict openleadr's templates render.

Built by hand because openleadr's add_event drops most optional fields (priority,
test_event, vtn_comment, tolerance) and re-derives the status with its own rules;
the status here is the one shared.lifecycle gives, the same the scheduler uses.
"""

from __future__ import annotations

from adrstack.shared.messages import DrEvent, EventStatus

SIMPLE_LEVELS = (0, 1, 2, 3)


class UndeliverableEvent(ValueError):
    """The event cannot be expressed as a valid oadrEvent (openleadr would refuse to render it)."""


def check_deliverable(event: DrEvent) -> None:
    if event.signal_name == "SIMPLE":
        bad = [i.payload for i in event.intervals if i.payload not in SIMPLE_LEVELS]
        if bad:
            raise UndeliverableEvent(f"SIMPLE payloads must be one of 0..3, event {event.event_id} has {bad}")
    for i in event.intervals:
        if i.duration.microseconds:
            raise UndeliverableEvent(f"interval durations must be whole seconds (event {event.event_id})")


def event_dict(event: DrEvent, status: EventStatus, ven_id: str) -> dict:
    """The oadrEvent for ``ven_id``. Targets name only the receiving VEN (plus group/resource/party
    targets): other customers' venIDs are not this VEN's business."""
    check_deliverable(event)
    descriptor = {
        "event_id": event.event_id,
        "modification_number": event.modification_number,
        "priority": event.priority,
        "market_context": event.market_context,
        "created_date_time": event.created_at,
        "event_status": status.value,
        "test_event": event.test_event,
        "vtn_comment": event.vtn_comment,
    }
    if event.modification_number > 0:
        descriptor["modification_date_time"] = event.modified_at
    active_period = {
        "dtstart": event.start_at,
        "duration": event.duration,
        "notification_period": event.notification,
        "ramp_up_period": event.ramp_up,
        "recovery_period": event.recovery,
        "tolerance": {"startafter": event.randomization} if event.randomization else None,
    }
    intervals = []
    at = event.start_at
    for uid, interval in enumerate(event.intervals):
        intervals.append(
            {"dtstart": at, "duration": interval.duration, "uid": uid, "signal_payload": interval.payload}
        )
        at = at + interval.duration
    signal = {
        "intervals": intervals,
        "signal_name": event.signal_name,
        "signal_type": event.signal_type,
        "signal_id": event.signal_id,
    }
    targets = [{"ven_id": ven_id}]
    targets += [{"group_id": g} for g in event.targets.group_ids]
    targets += [{"resource_id": r} for r in event.targets.resource_ids]
    targets += [{"party_id": p} for p in event.targets.party_ids]
    return {
        "event_descriptor": descriptor,
        "active_period": active_period,
        "event_signals": [signal],
        "targets": targets,
        "response_required": event.response_required,
    }


def delivery_order(items: list[tuple[DrEvent, EventStatus]]) -> list[tuple[DrEvent, EventStatus]]:
    """OpenADR order: active events first (by priority, 0 = lowest), then the rest by start."""

    def key(item: tuple[DrEvent, EventStatus]):
        event, status = item
        priority = event.priority if event.priority > 0 else float("inf")
        return (status != EventStatus.ACTIVE, priority if status == EventStatus.ACTIVE else 0,
                event.start_at, event.event_id)

    return sorted(items, key=key)


