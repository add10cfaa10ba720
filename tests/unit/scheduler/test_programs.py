"""The program planner's decision (pure, fake clock): which occurrences to create, which future
events to modify or cancel after an edit, and what to leave alone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from adrstack.scheduler.commands import CommandRejected, build_event
from adrstack.scheduler.programs import cancel_unless_started, follow_program, occurrence_command, plan
from adrstack.shared.messages import EventStatus
from adrstack.shared.programs import ProgramRecord, ProgramSchedule, ScheduleRule

import pytest


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def program(start=time(17), end=time(20), days=("mon", "tue", "wed", "thu", "fri"), **kw) -> ProgramRecord:
    schedule = ProgramSchedule(time_zone="Europe/Paris", rules=[ScheduleRule(days=list(days), start=start, end=end)],
                               **kw.pop("schedule", {}))
    fields = {"program_id": "peak", "market_context": "http://mc/peak", "ven_ids": ["ven-1"], "group_ids": ["north"],
              "level": 2, "notification": timedelta(hours=1), **kw}
    return ProgramRecord(schedule=schedule, **fields)


HORIZON = timedelta(days=2)
NOW = utc(2026, 3, 26, 8)  # Thursday morning


def created(p: ProgramRecord, now: datetime = NOW):
    """The events a first plan creates, as stored."""
    return [build_event(c, c.event_id, now) for c in plan({"peak": p}, [], now, HORIZON).create]


def test_creates_the_occurrences_within_the_horizon():
    todo = plan({"peak": program()}, [], NOW, HORIZON)
    assert [c.event_id for c in todo.create] == ["prg-peak-20260326", "prg-peak-20260327"]
    first = todo.create[0]
    assert first.start_at == utc(2026, 3, 26, 16)
    assert first.intervals[0].duration == timedelta(hours=3) and first.intervals[0].payload == 2
    assert first.ven_ids == ["ven-1"] and first.group_ids == ["north"]
    assert first.market_context == "http://mc/peak" and first.notification == timedelta(hours=1)
    assert not todo.modify and not todo.cancel


def test_nothing_to_do_once_created():
    events = created(program())
    assert not plan({"peak": program()}, events, NOW, HORIZON)


def test_an_occurrence_whose_notification_time_passed_is_not_created():
    todo = plan({"peak": program()}, [], utc(2026, 3, 26, 15, 30), HORIZON)
    assert [c.event_id for c in todo.create] == ["prg-peak-20260327"]


def test_lookahead_is_at_least_the_notification():
    p = program(notification=timedelta(days=3))
    # Thursday's notification time is Monday 16:00Z: with a planning margin it is created before that.
    todo = plan({"peak": p}, [], utc(2026, 3, 23, 15), timedelta(hours=1), margin=timedelta(hours=2))
    assert [c.event_id for c in todo.create] == ["prg-peak-20260326"]
    assert not plan({"peak": p}, [], utc(2026, 3, 23, 15), timedelta(hours=1))  # without: not yet


def test_unenrolled_program_creates_nothing():
    p = program().model_copy(update={"ven_ids": [], "group_ids": []})
    assert not plan({"peak": p}, [], NOW, HORIZON)


def test_editing_the_schedule_modifies_future_events_and_leaves_active_ones():
    events = created(program())
    now = utc(2026, 3, 26, 17)  # today's is active
    events[0].status = EventStatus.ACTIVE
    edited = program(start=time(18), end=time(21))
    todo = plan({"peak": edited}, events, now, HORIZON)
    assert [c.event_id for c in todo.modify] == ["prg-peak-20260327"]
    assert todo.modify[0].start_at == utc(2026, 3, 27, 17)
    assert not todo.cancel
    change = follow_program(todo.modify[0])
    changed = change(events[1], now)
    assert changed.modification_number == 1 and changed.start_at == utc(2026, 3, 27, 17)
    assert change(changed, now) is None  # applied once: a second replica changes nothing
    with pytest.raises(CommandRejected):
        change(events[0], now)


def test_level_and_targets_edits_modify():
    events = created(program())
    todo = plan({"peak": program(level=3, ven_ids=["ven-2"])}, events, NOW, HORIZON)
    assert [c.event_id for c in todo.modify] == ["prg-peak-20260326", "prg-peak-20260327"]


def test_a_day_leaving_the_schedule_is_cancelled():
    events = created(program())
    todo = plan({"peak": program(schedule={"exclusion_dates": [date(2026, 3, 27)]})}, events, NOW, HORIZON)
    assert todo.cancel == ["prg-peak-20260327"] and not todo.modify and not todo.create
    todo = plan({"peak": program(days=("thu",))}, events, NOW, HORIZON)
    assert todo.cancel == ["prg-peak-20260327"]


def test_a_day_excluded_then_back_is_a_new_event_and_an_operators_cancel_stays():
    excluded = program(schedule={"exclusion_dates": [date(2026, 3, 27)]})
    events = created(program())
    events[1] = cancel_unless_started(events[1], NOW)  # what the planner does for the exclusion
    assert events[1].cancel_reason is not None
    assert not plan({"peak": excluded}, events, NOW, HORIZON)  # still excluded: nothing to do
    todo = plan({"peak": program()}, events, NOW, HORIZON)  # the exclusion removed
    assert [c.event_id for c in todo.create] == ["prg-peak-20260327r1"] and not todo.modify and not todo.cancel
    assert todo.create[0].start_at == utc(2026, 3, 27, 16)
    # Excluded and back once more: r2, built on the latest of that day.
    events.append(cancel_unless_started(build_event(todo.create[0], todo.create[0].event_id, NOW), NOW))
    assert [c.event_id for c in plan({"peak": program()}, events, NOW, HORIZON).create] == ["prg-peak-20260327r2"]
    # The revived event follows later edits like any occurrence.
    events[-1] = build_event(todo.create[0], todo.create[0].event_id, NOW)
    assert [c.event_id for c in plan({"peak": program(level=3)}, events, NOW, HORIZON).modify] == [
        "prg-peak-20260326", "prg-peak-20260327r1"]
    # An operator's cancelEvent (no cancel_reason) is final.
    operator = created(program())
    operator[1] = operator[1].model_copy(update={"status": EventStatus.CANCELLED, "modification_number": 1})
    assert not plan({"peak": program()}, operator, NOW, HORIZON)


def test_deleting_the_program_cancels_its_future_events_only():
    events = created(program())
    events[0].status = EventStatus.ACTIVE
    todo = plan({}, events, utc(2026, 3, 26, 17), HORIZON)
    assert todo.cancel == ["prg-peak-20260327"]
    cancelled = cancel_unless_started(events[1], NOW)
    assert cancelled.status == EventStatus.CANCELLED and cancelled.modification_number == 1
    assert cancel_unless_started(cancelled, NOW) is None
    with pytest.raises(CommandRejected):
        cancel_unless_started(events[0], NOW)


def test_moving_a_future_window_into_the_past_cancels_it():
    events = created(program())
    todo = plan({"peak": program(start=time(9), end=time(10))}, events, utc(2026, 3, 26, 12), HORIZON)
    assert todo.cancel == ["prg-peak-20260326"]
    assert [c.event_id for c in todo.modify] == ["prg-peak-20260327"]


def test_other_events_are_ignored():
    c = occurrence_command(program(), date(2026, 3, 26), utc(2026, 3, 26, 16), utc(2026, 3, 26, 19))
    other = build_event(c, "evt-123", NOW)
    assert not plan({}, [other], NOW, HORIZON)
