"""What a VEN is shown of a DrEvent: the oadrEvent dict openleadr's templates render.

Built by hand because openleadr's add_event drops most optional fields (priority,
test_event, vtn_comment, tolerance) and re-derives the status with its own rules;
the status here is the one shared.lifecycle gives, the same the scheduler uses.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from openleadr.messaging import create_message, validate_xml_schema

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
    # Whatever the API let through (a control character, a signalType outside the 2.0b enumeration)
    # must fail here, once, and not in the VEN's parser: every oadrDistributeEvent carries all of
    # a VEN's events, so one unparseable event would hide all the others from it.
    try:
        xml = create_message("oadrDistributeEvent", request_id="check", vtn_id="check",
                             events=[_event_dict(event, EventStatus.FAR, "check")])
        validate_xml_schema(xml)
    except Exception as e:
        raise UndeliverableEvent(f"event {event.event_id} does not render as a valid oadrEvent: {e}") from e


def _text(value: str | None) -> str | None:
    """openleadr's templates do not autoescape: '&' or '<' in a text field would break the XML."""
    return None if value is None else escape(value)


def event_dict(event: DrEvent, status: EventStatus, ven_id: str) -> dict:
    """The oadrEvent for ``ven_id``. Targets name only the receiving VEN (plus group/resource/party
    targets): other customers' venIDs are not this VEN's business."""
    check_deliverable(event)
    return _event_dict(event, status, ven_id)


def _event_dict(event: DrEvent, status: EventStatus, ven_id: str) -> dict:
    descriptor = {
        "event_id": event.event_id,
        "modification_number": event.modification_number,
        "priority": event.priority,
        "market_context": _text(event.market_context),
        "created_date_time": event.created_at,
        "event_status": status.value,
        "test_event": event.test_event,
        "vtn_comment": _text(event.vtn_comment),
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
        "signal_name": _text(event.signal_name),
        "signal_type": _text(event.signal_type),
        "signal_id": _text(event.signal_id),
    }
    targets = [{"ven_id": ven_id}]
    targets += [{"group_id": _text(g)} for g in event.targets.group_ids]
    targets += [{"resource_id": _text(r)} for r in event.targets.resource_ids]
    targets += [{"party_id": _text(p)} for p in event.targets.party_ids]
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


