"""2.0b rule 18 (A_E3_0530), the pure part: which events belong to which market contexts, when two
active windows [start_at, completes_at) overlap (randomization included, back-to-back allowed), and
which other event a new or modified event would overlap in a market context whose program refuses
overlaps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.scheduler.overlaps import conflicts, first_overlap, market_contexts, windows_overlap
from adrstack.shared.messages import DrEvent, EventInterval, EventStatus, EventTargets

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
M, OTHER = "http://mc/guarded", "http://mc/other"


def event(event_id: str, start_minutes: int, minutes: int = 60, *, market_context: str = M,
          targets: list[str] | None = None, status: EventStatus = EventStatus.FAR, **kw) -> DrEvent:
    return DrEvent(event_id=event_id, status=status, start_at=T0 + timedelta(minutes=start_minutes),
                   intervals=[EventInterval(duration=timedelta(minutes=minutes), payload=1)],
                   targets=EventTargets(ven_ids=["ven-1"], market_contexts=targets or []),
                   market_context=market_context, **kw)


def test_an_event_belongs_to_its_market_context_and_the_ones_it_targets():
    assert market_contexts(event("a", 0)) == {M}
    assert market_contexts(event("a", 0, market_context=OTHER, targets=[M])) == {M, OTHER}


def test_windows_are_half_open():
    a = event("a", 0, 60)
    assert windows_overlap(a, event("b", 30))
    assert windows_overlap(a, event("b", -30))
    assert windows_overlap(a, event("b", 10, 10))  # inside
    assert windows_overlap(event("b", -10, 100), a)  # around
    assert not windows_overlap(a, event("b", 60))  # back to back: end == next start
    assert not windows_overlap(event("b", -60), a)
    assert not windows_overlap(a, event("b", 120))


def test_an_open_ended_event_overlaps_everything_after_its_start():
    """Rule 47 with rule 18: an event of duration 0 has no end, so it blocks every later window."""
    opened = event("open", 0, 0)
    assert windows_overlap(opened, event("b", 60 * 24 * 365))
    assert windows_overlap(event("b", 60 * 24 * 365), opened)
    assert not windows_overlap(opened, event("b", -60))  # ends exactly when it starts
    assert windows_overlap(opened, event("other-open", 5, 0))
    assert first_overlap(event("late", 600), [opened], {M}) is not None


def test_randomization_extends_the_window():
    a = event("a", 0, 60, randomization=timedelta(minutes=10))  # a VEN may run it until +70 min
    assert windows_overlap(a, event("b", 65))
    assert not windows_overlap(a, event("b", 70))


def test_only_guarded_market_contexts_count():
    a = event("a", 0)
    assert first_overlap(event("b", 30), [a], {M}) == (a, M)
    assert first_overlap(event("b", 30), [a], set()) is None  # no program refuses overlaps
    assert first_overlap(event("b", 30, market_context=OTHER), [a], {M, OTHER}) is None  # across contexts
    assert first_overlap(event("b", 30, market_context=OTHER, targets=[M]), [a], {M}) == (a, M)
    assert first_overlap(event("b", 30), [event("a", 0, market_context=OTHER, targets=[M])], {M})[1] == M


def test_cancelled_and_completed_events_and_the_event_itself_do_not_block():
    assert first_overlap(event("b", 30), [event("a", 0, status=EventStatus.CANCELLED)], {M}) is None
    assert first_overlap(event("b", 30), [event("a", 0, status=EventStatus.COMPLETED)], {M}) is None
    assert first_overlap(event("a", 30), [event("a", 0)], {M}) is None  # its own earlier state


def test_the_earliest_blocker_is_named():
    others = [event("late", 50), event("early", 20), event("far", 500)]
    assert first_overlap(event("b", 30, 60), others, {M})[0].event_id == "early"
    assert set(conflicts(event("b", 30, 60), others, {M})) == {"early", "late"}


def test_a_modification_is_refused_only_for_overlaps_it_creates():
    a, b = event("a", 0), event("b", 120)
    assert first_overlap(event("b", 30), [a, b], {M}, before=b) == (a, M)  # moved onto a
    # Already overlapping (e.g. the program turned the rule on later): changing it otherwise is allowed.
    overlapping = event("b", 30)
    assert first_overlap(event("b", 30, vtn_comment="new text"), [a, overlapping], {M}, before=overlapping) is None
    assert first_overlap(event("b", 20), [a, overlapping], {M}, before=overlapping) is None
