"""Input checks done in the API before anything is sent to the scheduler.

Each failure is an :class:`InvalidInput` naming the offending field the way the caller
wrote it (``venIds[1]``, ``intervals[0].duration``), so a client can point at it.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Protocol

from pydantic import ValidationError

from adrstack.shared.messages import (
    MAX_SIGNALS,
    MAX_TARGETED_VENS,
    CancelEventCommand,
    CreateEventCommand,
    EventBaseline,
    EventInterval,
    ModifyEventCommand,
    SignalSpec,
    utcnow,
)
from adrstack.shared.identity import InvalidFingerprint, normalize_fingerprint
from adrstack.shared.signals import SignalUnits, signal_problem
from adrstack.shared.subjects import TOKEN_RULE, is_valid_token

from .durations import DurationError, format_duration, parse_duration
from .errors import InvalidInput

RESPONSE_REQUIRED = ("always", "never")
SIMPLE_LEVELS = (0, 1, 2, 3)  # 2.0b rule 9; the scheduler refuses the others too
VEN_NAME_MAX_LENGTH = 256  # adrstack.shared.identity.ProvisionedVen.ven_name


class IntervalLike(Protocol):
    duration: str
    payload: float


class UnitsLike(Protocol):
    kind: str
    unit: str
    scale: str
    hertz: float | None
    voltage: float | None
    ac: bool


class BaselineLike(Protocol):
    start_at: datetime
    intervals: Iterable[IntervalLike]
    baseline_id: str
    baseline_name: str
    resource_ids: Iterable[str] | None
    units: UnitsLike | None


class SignalLike(Protocol):
    signal_name: str
    signal_type: str
    intervals: Iterable[IntervalLike]
    units: UnitsLike | None


@dataclass
class IntervalSpec:
    duration: str
    payload: float


def shown(value: object, limit: int = 80) -> str:
    """A caller's value quoted in an error message, cut short: the answer need not repeat a megabyte."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def check_token(value: object, field: str, what: str) -> str:
    if not is_valid_token(value):
        raise InvalidInput(field, f"{shown(value)} is not a valid {what} (must be {TOKEN_RULE})")
    return value  # type: ignore[return-value]


def check_ven_ids(ven_ids: Iterable[str] | None, field: str = "venIds") -> list[str]:
    ids = list(ven_ids or [])
    if not ids:
        raise InvalidInput(field, "at least one VEN id is required")
    for i, ven_id in enumerate(ids):
        check_token(ven_id, f"{field}[{i}]", "VEN id")
    unique = list(dict.fromkeys(ids))  # without repeats, in order
    if len(unique) > MAX_TARGETED_VENS:
        raise InvalidInput(field, f"at most {MAX_TARGETED_VENS} VENs per event, not {len(unique)}")
    return unique


MAX_TARGET_IDS = 1000  # adrstack.shared.messages.MAX_TARGET_IDS
RESOURCE_ID_MAX_LENGTH = 256
GROUP_NAME_MAX_LENGTH = 256


def check_group_ids(group_ids: Iterable[str] | None, field: str = "groupIds") -> list[str]:
    ids = list(group_ids or [])
    for i, group_id in enumerate(ids):
        check_token(group_id, f"{field}[{i}]", "group id")
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_TARGET_IDS:
        raise InvalidInput(field, f"at most {MAX_TARGET_IDS} groups per event, not {len(unique)}")
    return unique


def check_resource_ids(resource_ids: Iterable[str] | None, field: str = "resourceIds") -> list[str]:
    """Resource ids as VENs declare them in their reports: any printable text, not blank."""
    ids = list(resource_ids or [])
    for i, resource_id in enumerate(ids):
        if (not isinstance(resource_id, str) or not resource_id.strip() or len(resource_id) > RESOURCE_ID_MAX_LENGTH
                or any(unicodedata.category(c).startswith("C") for c in resource_id)):
            raise InvalidInput(f"{field}[{i}]", f"{shown(resource_id)} is not a resource id (printable text, "
                                                f"1-{RESOURCE_ID_MAX_LENGTH} characters)")
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_TARGET_IDS:
        raise InvalidInput(field, f"at most {MAX_TARGET_IDS} resource ids per event, not {len(unique)}")
    return unique


def check_group_name(value: str | None, field: str = "name") -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > GROUP_NAME_MAX_LENGTH:
        raise InvalidInput(field, f"has {len(value)} characters; at most {GROUP_NAME_MAX_LENGTH} are allowed")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


NO_TARGET = "at least one target is required: venIds, groupIds, resourceIds or marketContexts"


def check_market_contexts(market_contexts: Iterable[str] | None, field: str = "marketContexts") -> list[str]:
    """Market-context targets: program market context URIs (printable text)."""
    ids = list(market_contexts or [])
    for i, value in enumerate(ids):
        if not isinstance(value, str) or not value.strip() or len(value) > RESOURCE_ID_MAX_LENGTH or any(
                unicodedata.category(c).startswith("C") for c in value):
            raise InvalidInput(f"{field}[{i}]", f"{shown(value)} is not a market context URI")
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_TARGET_IDS:
        raise InvalidInput(field, f"at most {MAX_TARGET_IDS} market contexts per event, not {len(unique)}")
    return unique


def check_intervals(intervals: Iterable[IntervalLike] | None, field: str = "intervals") -> list[EventInterval]:
    items = list(intervals or [])
    if not items:
        raise InvalidInput(field, "at least one interval is required, e.g. [{duration: \"PT1H\", payload: 1}]")
    out = []
    for i, interval in enumerate(items):
        try:
            duration = parse_duration(interval.duration, positive=False)
        except DurationError as e:
            raise InvalidInput(f"{field}[{i}].duration", str(e)) from None
        if not duration and len(items) > 1:
            raise InvalidInput(f"{field}[{i}].duration", "PT0S (open-ended: active until cancelled) is allowed "
                                                         "only as the single interval of a signal")
        payload = interval.payload
        if payload is None or isinstance(payload, bool) or not math.isfinite(float(payload)):
            raise InvalidInput(f"{field}[{i}].payload", f"{payload!r} is not a finite number")
        out.append(EventInterval(duration=duration, payload=float(payload)))
    return out


def check_simple_levels(intervals: list[EventInterval], signal_name: str | None, field: str = "intervals") -> None:
    """A SIMPLE signal's payloads are levels 0..3 (the scheduler, which owns events, checks too)."""
    if signal_name != "SIMPLE":
        return
    for i, interval in enumerate(intervals):
        if interval.payload not in SIMPLE_LEVELS:
            raise InvalidInput(f"{field}[{i}].payload",
                               f"a SIMPLE signal's level is 0, 1, 2 or 3, not {interval.payload:g}")


def check_units(units: UnitsLike | None, field: str = "units") -> SignalUnits | None:
    if units is None:
        return None
    given: dict[str, Any] = {"kind": units.kind, "unit": units.unit, "scale": units.scale, "hertz": units.hertz,
                             "voltage": units.voltage, "ac": units.ac}
    try:
        return SignalUnits.model_validate(given)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(f"{field}.{where}" if where else field,
                           str(first.get("msg", "is invalid")).removeprefix("Value error, ")) from None


def check_baseline(baseline: BaselineLike | None, field: str = "baseline") -> EventBaseline | None:
    """E1_1027: the baseline's intervals each last more than zero; its resources are the event's words."""
    if baseline is None:
        return None
    check_aware(baseline.start_at, f"{field}.startAt")
    intervals = check_intervals(baseline.intervals, f"{field}.intervals")
    for i, interval in enumerate(intervals):
        if not interval.duration:
            raise InvalidInput(f"{field}.intervals[{i}].duration", "a baseline interval lasts more than zero")
    check_text(baseline.baseline_id, f"{field}.baselineId")
    check_text(baseline.baseline_name, f"{field}.baselineName")
    resources = check_resource_ids(baseline.resource_ids, f"{field}.resourceIds")
    return EventBaseline(start_at=baseline.start_at, intervals=intervals, baseline_id=baseline.baseline_id,
                         baseline_name=baseline.baseline_name, resource_ids=resources,
                         units=check_units(baseline.units, f"{field}.units"))


def check_signal(signal_name: str, signal_type: str, units: SignalUnits | None, prefix: str = "") -> None:
    """Rule 7: the signalType and units fit the signalName (the scheduler checks it too)."""
    problem = signal_problem(signal_name, signal_type, units)
    if problem is not None:
        raise InvalidInput(prefix + problem[0], problem[1])


def check_signals(signals: Iterable[SignalLike], field: str = "signals") -> list[SignalSpec]:
    """Every signal of an event, its own first; each covers the event's whole active period."""
    items = list(signals)
    if not 1 <= len(items) <= MAX_SIGNALS:
        raise InvalidInput(field, f"an event has 1 to {MAX_SIGNALS} signals, not {len(items)}")
    out = []
    for n, signal in enumerate(items):
        at = f"{field}[{n}]"
        check_text(signal.signal_name, f"{at}.signalName")
        check_text(signal.signal_type, f"{at}.signalType")
        units = check_units(signal.units, f"{at}.units")
        check_signal(signal.signal_name, signal.signal_type, units, f"{at}.")
        intervals = check_intervals(signal.intervals, f"{at}.intervals")
        check_simple_levels(intervals, signal.signal_name, f"{at}.intervals")
        spec = SignalSpec(signal_name=signal.signal_name, signal_type=signal.signal_type, intervals=intervals,
                          units=units)
        if out and spec.duration != out[0].duration:
            raise InvalidInput(f"{at}.intervals", f"last {format_duration(spec.duration)}, the first signal's "
                                                  f"{format_duration(out[0].duration)}: every signal covers the "
                                                  "whole event")
        out.append(spec)
    return out


def check_aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidInput(
            field, f"{value.isoformat()} has no time zone; give one, e.g. 2030-01-01T12:00:00Z"
        )
    return value


def check_optional_duration(value: str | None, field: str):
    """notification, rampUp, recovery, randomization: zero (PT0S) is allowed and means none."""
    if value is None:
        return None
    try:
        return parse_duration(value, positive=False)
    except DurationError as e:
        raise InvalidInput(field, str(e)) from None


def check_text(value: str | None, field: str) -> str | None:
    if value is not None and not value.strip():
        raise InvalidInput(field, "must not be empty")
    return value


def check_ven_name(value: str, field: str = "venName") -> str:
    """A VEN name as the VEN will send it in oadrCreatePartyRegistration: not blank, printable."""
    if not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > VEN_NAME_MAX_LENGTH:
        raise InvalidInput(field, f"has {len(value)} characters; at most {VEN_NAME_MAX_LENGTH} are allowed")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def check_fingerprint(value: str, field: str = "certFingerprint") -> str:
    """The fingerprint in the 2.0b colon form."""
    try:
        return normalize_fingerprint(value)
    except InvalidFingerprint as e:
        raise InvalidInput(field, str(e)) from None


def check_priority(value: int | None, field: str = "priority") -> int | None:
    if value is not None and value < 0:
        raise InvalidInput(field, f"{value} is negative; priority is 0 (none) or more")
    return value


def create_command(
    *,
    ven_ids: Iterable[str] | None,
    intervals: Iterable[IntervalLike] | None,
    group_ids: Iterable[str] | None = None,
    resource_ids: Iterable[str] | None = None,
    signal_name: str = "SIMPLE",
    signal_type: str = "level",
    units: UnitsLike | None = None,
    start_at: datetime | None = None,
    event_id: str | None = None,
    priority: int | None = None,
    market_context: str | None = None,
    response_required: str | None = None,
    vtn_comment: str | None = None,
    notification: str | None = None,
    ramp_up: str | None = None,
    recovery: str | None = None,
    randomization: str | None = None,
    test_event: bool = False,
    signals: Iterable[SignalLike] | None = None,
    market_contexts: Iterable[str] | None = None,
    now: datetime | None = None,
    idempotency_key: str | None = None,
    baseline: BaselineLike | None = None,
) -> CreateEventCommand:
    if event_id is not None:
        check_token(event_id, "eventId", "event id")
    groups = check_group_ids(group_ids)
    resources = check_resource_ids(resource_ids)
    contexts = check_market_contexts(market_contexts)
    if not list(ven_ids or []) and not (groups or resources or contexts):
        raise InvalidInput("venIds", NO_TARGET)
    if market_context is None and len(contexts) == 1:
        market_context = contexts[0]  # an event for a program's VENs is an event of that program
    ids = check_ven_ids(ven_ids) if ven_ids else []
    extra_signals: list[SignalSpec] = []
    if signals is not None:
        if intervals is not None:
            raise InvalidInput("signals", "give intervals (one signal) or signals (every signal), not both")
        if units is not None:
            raise InvalidInput("units", "give units in each of signals, not beside them")
        own, *extra_signals = check_signals(signals)
        signal_name, signal_type, parsed, parsed_units = own.signal_name, own.signal_type, own.intervals, own.units
    else:
        check_text(signal_name, "signalName")
        check_text(signal_type, "signalType")
        parsed_units = check_units(units)
        check_signal(signal_name or "SIMPLE", signal_type or "level", parsed_units)
        parsed = check_intervals(intervals)
    check_simple_levels(parsed, signal_name or "SIMPLE")
    check_aware(start_at, "startAt")
    check_priority(priority)
    check_text(market_context, "marketContext")
    check_response_required(response_required)
    extra = {
        k: v
        for k, v in {
            "priority": priority,
            "market_context": market_context,
            "response_required": response_required,
            "vtn_comment": vtn_comment,
            "notification": check_optional_duration(notification, "notification"),
            "ramp_up": check_optional_duration(ramp_up, "rampUp"),
            "recovery": check_optional_duration(recovery, "recovery"),
            "randomization": check_optional_duration(randomization, "randomization"),
            "test_event": test_event or None,
            "extra_signals": extra_signals or None,
            "units": parsed_units,
            "baseline": check_baseline(baseline),
        }.items()
        if v is not None
    }
    return CreateEventCommand(
        event_id=event_id,
        ven_ids=ids,
        group_ids=groups,
        resource_ids=resources,
        market_contexts=contexts,
        intervals=parsed,
        signal_name=signal_name or "SIMPLE",
        signal_type=signal_type or "level",
        # Resolved here, not by the scheduler, so "now" is when the operator asked; but a retried
        # command must be the same request, so with an idempotency key the scheduler's "now" of the
        # first attempt stands.
        start_at=start_at or (None if idempotency_key else now or utcnow()),
        idempotency_key=check_idempotency_key(idempotency_key),
        **extra,
    )


def modify_command(
    *,
    event_id: str,
    intervals: Iterable[IntervalLike] | None = None,
    start_at: datetime | None = None,
    ven_ids: Iterable[str] | None = None,
    priority: int | None = None,
    signal_name: str | None = None,
    signal_type: str | None = None,
    units: UnitsLike | None = None,
    vtn_comment: str | None = None,
    group_ids: Iterable[str] | None = None,
    resource_ids: Iterable[str] | None = None,
    market_context: str | None = None,
    response_required: str | None = None,
    test_event: bool | None = None,
    notification: str | None = None,
    ramp_up: str | None = None,
    recovery: str | None = None,
    randomization: str | None = None,
    signals: Iterable[SignalLike] | None = None,
    market_contexts: Iterable[str] | None = None,
    idempotency_key: str | None = None,
    baseline: BaselineLike | None = None,
    remove_baseline: bool = False,
) -> ModifyEventCommand:
    check_token(event_id, "eventId", "event id")
    # A target list given replaces that kind; an empty one clears it, as long as another is given.
    groups = None if group_ids is None else check_group_ids(group_ids)
    resources = None if resource_ids is None else check_resource_ids(resource_ids)
    contexts = None if market_contexts is None else check_market_contexts(market_contexts)
    ven_list = None if ven_ids is None else list(ven_ids)
    if ven_list is not None and not ven_list and not (groups or resources or contexts):
        raise InvalidInput("venIds", NO_TARGET)
    if ven_list is None and groups is not None and resources is not None and not (groups or resources):
        raise InvalidInput("groupIds", NO_TARGET)
    extra_signals = None
    parsed = None if intervals is None else check_intervals(intervals)
    parsed_units = None
    if signals is not None:
        if intervals is not None or signal_name is not None or signal_type is not None or units is not None:
            raise InvalidInput("signals", "give signals (every signal) or intervals/signalName/signalType/units, "
                                          "not both")
        own, *extra_signals = check_signals(signals)
        parsed, signal_name, signal_type, parsed_units = own.intervals, own.signal_name, own.signal_type, own.units
    else:
        parsed_units = check_units(units)
        if signal_name is not None and signal_type is not None:
            # With one of them, the event's other decides: the scheduler checks that case.
            check_signal(check_text(signal_name, "signalName"), check_text(signal_type, "signalType"), parsed_units)
    changes = {
        "intervals": parsed,
        "start_at": check_aware(start_at, "startAt"),
        "ven_ids": None if ven_list is None else (check_ven_ids(ven_list) if ven_list else []),
        "group_ids": groups,
        "resource_ids": resources,
        "market_contexts": contexts,
        "priority": check_priority(priority),
        "signal_name": check_text(signal_name, "signalName"),
        "signal_type": check_text(signal_type, "signalType"),
        "units": parsed_units,
        "vtn_comment": vtn_comment,
        "market_context": check_text(market_context, "marketContext"),
        "response_required": check_response_required(response_required),
        "test_event": test_event,
        "notification": check_optional_duration(notification, "notification"),
        "ramp_up": check_optional_duration(ramp_up, "rampUp"),
        "recovery": check_optional_duration(recovery, "recovery"),
        "randomization": check_optional_duration(randomization, "randomization"),
        "extra_signals": extra_signals,
        "baseline": check_baseline(baseline),
        "remove_baseline": True if remove_baseline else None,
    }
    if baseline is not None and remove_baseline:
        raise InvalidInput("removeBaseline", "give a baseline or removeBaseline, not both")
    if changes["intervals"] is not None:
        # Without signalName the event's own signal decides; the scheduler checks that case.
        check_simple_levels(changes["intervals"], signal_name)
    if all(v is None for v in changes.values()):
        raise InvalidInput(None, "nothing to modify: give at least one field of createEvent's input (intervals, "
                                 "startAt, venIds, groupIds, resourceIds, priority, signalName, ...)")
    return ModifyEventCommand(event_id=event_id, idempotency_key=check_idempotency_key(idempotency_key),
                              **{k: v for k, v in changes.items() if v is not None})


def check_response_required(value: str | None) -> str | None:
    if value is not None and value not in RESPONSE_REQUIRED:
        raise InvalidInput("responseRequired", f"{shown(value)} must be 'always' or 'never'")
    return value


def cancel_command(event_id: str, idempotency_key: str | None = None) -> CancelEventCommand:
    return CancelEventCommand(event_id=check_token(event_id, "eventId", "event id"),
                              idempotency_key=check_idempotency_key(idempotency_key))


MAX_IDEMPOTENCY_KEY = 200


def check_idempotency_key(key: str | None, field: str = "idempotencyKey") -> str | None:
    """A client's key for retrying a command safely: the scheduler applies a command with a key
    once and answers a retry with the first reply."""
    if key is not None and (not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable()):
        raise InvalidInput(field, f"must be 1-{MAX_IDEMPOTENCY_KEY} printable characters")
    return key
