"""Timer decisions: which transition is due and how long the loop may sleep."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.scheduler.facts import transition_fact, transition_id
from adrstack.scheduler.timers import due_transition, seconds_until_next
from adrstack.shared.messages import DrEvent, EventInterval, EventStatus, EventTargets, Transition

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def event(status=EventStatus.FAR, start=NOW + timedelta(hours=1), minutes=30, n=0) -> DrEvent:
    return DrEvent(
        event_id="e1",
        modification_number=n,
        status=status,
        start_at=start,
        intervals=[EventInterval(duration=timedelta(minutes=minutes), payload=1)],
        targets=EventTargets(ven_ids=["v"]),
    )


def test_nothing_due_while_the_stored_status_is_current():
    assert due_transition(event(), NOW) is None


def test_due_transition_is_the_status_actually_reached():
    e = event(EventStatus.FAR, start=NOW - timedelta(minutes=1))
    assert due_transition(e, NOW) == Transition.ACTIVE
    # A process that was down past the end skips straight to completed.
    assert due_transition(e, NOW + timedelta(hours=1)) == Transition.COMPLETED


def test_terminal_events_never_transition():
    assert due_transition(event(EventStatus.CANCELLED, start=NOW - timedelta(minutes=1)), NOW) is None
    assert due_transition(event(EventStatus.COMPLETED, start=NOW - timedelta(hours=2)), NOW) is None


def test_sleep_until_the_nearest_boundary_capped():
    soon = event(EventStatus.NEAR, start=NOW + timedelta(seconds=0.25))
    assert seconds_until_next([event(), soon], NOW, cap=1.0) == 0.25
    assert seconds_until_next([event()], NOW, cap=1.0) == 1.0
    assert seconds_until_next([], NOW, cap=1.0) == 1.0


def test_transition_ids_are_deterministic_per_committed_revision():
    a = transition_fact(event(), Transition.ACTIVE, 7, NOW)
    b = transition_fact(event(), Transition.ACTIVE, 7, NOW + timedelta(seconds=3))
    assert a.id == b.id == transition_id("e1", 7, Transition.ACTIVE)
    assert transition_id("e1", 8, Transition.ACTIVE) != a.id
    assert transition_id("e2", 7, Transition.ACTIVE) != a.id
    assert transition_id("e1", 7, Transition.COMPLETED) != a.id
