"""Pure DR event lifecycle rules, shared by the scheduler (which fires transitions)
and the gateway (which reports the status a VEN should see)."""

from __future__ import annotations

from datetime import datetime, timedelta

from .messages import DrEvent, EventStatus

# Without an explicit ramp-up, an event is "near" this long before it starts.
DEFAULT_NEAR_WINDOW = timedelta(minutes=5)

TERMINAL = frozenset({EventStatus.COMPLETED, EventStatus.CANCELLED})


def near_window(event: DrEvent) -> timedelta:
    return event.ramp_up if event.ramp_up else DEFAULT_NEAR_WINDOW


def completes_at(event: DrEvent) -> datetime | None:
    """When the event is over for every VEN: a VEN may start it up to ``randomization``
    (startafter) late, so it is kept active and distributed until then (rule 66, A_E3_0685).
    None for an open-ended event, which stays active until cancelled (rule 47)."""
    end = event.end_at
    return None if end is None else end + (event.randomization or timedelta(0))


def status_at(event: DrEvent, now: datetime) -> EventStatus:
    """The status the clock gives the event at ``now`` (cancellation is sticky)."""
    if event.status == EventStatus.CANCELLED:
        return EventStatus.CANCELLED
    end = completes_at(event)
    if end is not None and now >= end:
        return EventStatus.COMPLETED
    if now >= event.start_at:
        return EventStatus.ACTIVE
    if now >= event.start_at - near_window(event):
        return EventStatus.NEAR
    return EventStatus.FAR


def next_boundary(event: DrEvent, now: datetime) -> datetime | None:
    """When the clock-driven status of ``event`` next changes, or None if it never will."""
    if event.status in TERMINAL:
        return None
    for t in (event.start_at - near_window(event), event.start_at, completes_at(event)):
        if t is not None and t > now:
            return t
    return None
