"""Pure command logic: parse a request, build or change a DrEvent, or say why not.

No I/O here; :mod:`.handlers` does the KV and stream work around these functions.
Error fields use the wire (snake_case) names, with list positions as ``intervals[0].duration``.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import ValidationError

from adrstack.shared import lifecycle
from adrstack.shared.messages import (
    CommandReply,
    CreateEventCommand,
    DrEvent,
    ErrorCode,
    EventStatus,
    Message,
    ModifyEventCommand,
    SignalSpec,
)
from adrstack.shared.signals import signal_problem, units_still_valid
from adrstack.shared.subjects import TOKEN_RULE, is_valid_token

C = TypeVar("C", bound=Message)


class CommandRejected(Exception):
    """A command that cannot be carried out; becomes a failure CommandReply."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def reply(self) -> CommandReply:
        return CommandReply.failure(self.code, self.message, self.field)


def field_path(loc: tuple) -> str | None:
    """('intervals', 0, 'duration') -> 'intervals[0].duration'; () -> None."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or None


def parse_command(model: type[C], data: bytes) -> C:
    try:
        return model.model_validate_json(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = field_path(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            raise CommandRejected("invalid", f"request is not valid JSON: {first.get('msg')}") from None
        message = first.get("msg", "invalid value")
        raise CommandRejected("invalid", f"{field}: {message}" if field else message, field) from None


def check_ven_ids(ven_ids: list[str]) -> None:
    """Shape only; whether each VEN is registered is looked up in the vens bucket."""
    for i, ven_id in enumerate(ven_ids):
        if not is_valid_token(ven_id):
            raise CommandRejected("invalid", f"ven_ids[{i}]: must be {TOKEN_RULE}", f"ven_ids[{i}]")


SIMPLE_LEVELS = (0, 1, 2, 3)  # 2.0b rule 9: a SIMPLE signal's payloads
DURATION_FIELDS = ("notification", "ramp_up", "recovery", "randomization")  # zero means none


_WIRE_NAMES = {"signalName": "signal_name", "signalType": "signal_type", "units": "units"}


def check_event(event: DrEvent) -> None:
    """What the model alone does not refuse but no VEN may be sent. Only new commands are held to
    it: records stored before these checks still decode."""
    for prefix, signal in [("", event.signals()[0])] + [(f"extra_signals[{n}].", s)
                                                          for n, s in enumerate(event.extra_signals)]:
        problem = signal_problem(signal.signal_name, signal.signal_type, signal.units)
        if problem is not None:  # rule 7
            field = prefix + _WIRE_NAMES[problem[0]]
            raise CommandRejected("invalid", f"{field}: {problem[1]}", field)
        if signal.signal_name != "SIMPLE":
            continue
        for i, interval in enumerate(signal.intervals):
            if interval.payload not in SIMPLE_LEVELS:
                field = f"{prefix}intervals[{i}].payload"
                raise CommandRejected(
                    "invalid", f"{field}: a SIMPLE signal's level is 0, 1, 2 or 3, not {interval.payload:g}", field
                )
    for name in DURATION_FIELDS:
        value = getattr(event, name)
        if value is not None and value < timedelta(0):
            raise CommandRejected("invalid", f"{name}: must not be negative (PT0S means none)", name)


def numbered_signals(signals: list[SignalSpec]) -> list[SignalSpec]:
    """Further signals with their ids: as given, else signal-2, signal-3, ... (the event's own is
    signal-1)."""
    return [s if s.signal_id else s.model_copy(update={"signal_id": f"signal-{n}"})
            for n, s in enumerate(signals, start=2)]


def new_event_id() -> str:
    return "evt-" + secrets.token_hex(6)


def build_event(command: CreateEventCommand, event_id: str, now: datetime) -> DrEvent:
    """The DrEvent a create command asks for, with the status the clock gives it now."""
    start_at = command.start_at or now
    try:
        event = DrEvent(
            event_id=event_id,
            modification_number=0,
            status=EventStatus.FAR,
            signal_name=command.signal_name,
            signal_type=command.signal_type,
            units=command.units,
            start_at=start_at,
            intervals=command.intervals,
            targets=command.targets,
            priority=command.priority,
            market_context=command.market_context,
            response_required=command.response_required,
            vtn_comment=command.vtn_comment,
            test_event=command.test_event,
            notification=command.notification,
            ramp_up=command.ramp_up,
            recovery=command.recovery,
            randomization=command.randomization,
            extra_signals=numbered_signals(command.extra_signals),
            baseline=command.baseline,
            created_at=now,
            modified_at=now,
        )
    except ValidationError as e:
        first = e.errors()[0]
        field = field_path(tuple(first.get("loc", ())))
        raise CommandRejected("invalid", f"{field}: {first.get('msg')}", field) from None
    check_event(event)
    status = clock_status(event, now)
    if status == EventStatus.COMPLETED:
        raise CommandRejected("invalid", "start_at: the event would already be over", "start_at")
    event.status = status
    return event


def clock_status(event: DrEvent, now: datetime) -> EventStatus:
    """lifecycle.status_at, with an event whose times fall outside the calendar refused as input."""
    try:
        status = lifecycle.status_at(event, now)
        lifecycle.next_boundary(event, now)  # the timer loop computes these times too
    except OverflowError:
        raise CommandRejected(
            "invalid", "intervals: start_at plus the interval durations lies beyond year 9999", "intervals"
        ) from None
    return status


def ensure_modifiable(event: DrEvent) -> None:
    if event.status in lifecycle.TERMINAL:
        raise CommandRejected(
            "conflict", f"event {event.event_id} is {event.status.value} and cannot be changed", "event_id"
        )


def apply_modify(event: DrEvent, command: ModifyEventCommand, now: datetime) -> DrEvent:
    """The event after ``command``: next modification number, status from the clock."""
    ensure_modifiable(event)
    changes: dict = {}
    for name in ("intervals", "start_at", "priority", "signal_name", "signal_type", "vtn_comment", "market_context",
                 "response_required", "test_event", *DURATION_FIELDS):
        value = getattr(command, name)
        if value is not None:
            changes[name] = value
    if command.units is not None:
        changes["units"] = command.units
    elif command.signal_name is not None or command.signal_type is not None:
        changes["units"] = units_still_valid(changes.get("signal_name", event.signal_name),
                                             changes.get("signal_type", event.signal_type), event.units)
    if command.extra_signals is not None:
        changes["extra_signals"] = numbered_signals(command.extra_signals)
    if command.remove_baseline:
        changes["baseline"] = None
    elif command.baseline is not None:
        changes["baseline"] = command.baseline
    retarget = {name: list(getattr(command, name))
                for name in ("ven_ids", "group_ids", "resource_ids", "market_contexts")
                if getattr(command, name) is not None}
    if retarget:
        targets = event.targets.model_copy(update=retarget)
        if not (targets.ven_ids or targets.group_ids or targets.resource_ids or targets.market_contexts):
            raise CommandRejected("invalid", "ven_ids: at least one target is required (ven_ids, group_ids, "
                                  "resource_ids or market_contexts)", "ven_ids")
        changes["targets"] = targets
    changes["modification_number"] = event.modification_number + 1
    changes["modified_at"] = now
    modified = event.model_copy(update=changes)
    # Re-validate: model_copy does not, and e.g. an empty interval list must not get through.
    try:
        modified = DrEvent.model_validate(modified.model_dump())
    except ValidationError as e:
        first = e.errors()[0]
        field = field_path(tuple(first.get("loc", ())))
        raise CommandRejected("invalid", f"{field}: {first.get('msg')}", field) from None
    check_event(modified)
    modified.status = clock_status(modified, now)
    return modified


def apply_cancel(event: DrEvent, now: datetime) -> DrEvent:
    if event.status == EventStatus.COMPLETED:
        raise CommandRejected("conflict", f"event {event.event_id} is already completed", "event_id")
    return event.model_copy(
        update={
            "status": EventStatus.CANCELLED,
            "modification_number": event.modification_number + 1,
            "modified_at": now,
        }
    )
