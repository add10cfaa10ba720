"""Program schedules expanded into occurrences: local times in a named zone across the
Europe/Paris daylight-saving changes of 2026-03-29 and 2026-10-25, exclusion dates, and the
nonexistent / ambiguous local times handled deliberately."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from pydantic import ValidationError

from adrstack.shared.programs import (
    ProgramRecord,
    ProgramSchedule,
    ScheduleRule,
    occurrence_event_id,
    occurrences,
    parse_occurrence_event_id,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def weekdays_17_20(**kw) -> ProgramSchedule:
    return ProgramSchedule(time_zone="Europe/Paris",
                           rules=[ScheduleRule(days=WEEKDAYS, start=time(17), end=time(20))], **kw)


def test_weekday_evenings_across_spring_forward():
    # Thu 2026-03-26 .. Tue 2026-03-31; the clocks go forward on Sunday 2026-03-29.
    got = occurrences(weekdays_17_20(), utc(2026, 3, 26), utc(2026, 4, 1))
    assert [(o.day, o.start, o.end) for o in got] == [
        (date(2026, 3, 26), utc(2026, 3, 26, 16), utc(2026, 3, 26, 19)),  # CET: 17:00 is 16:00Z
        (date(2026, 3, 27), utc(2026, 3, 27, 16), utc(2026, 3, 27, 19)),
        (date(2026, 3, 30), utc(2026, 3, 30, 15), utc(2026, 3, 30, 18)),  # CEST: 17:00 is 15:00Z
        (date(2026, 3, 31), utc(2026, 3, 31, 15), utc(2026, 3, 31, 18)),
    ]


def test_weekday_evenings_across_fall_back():
    got = occurrences(weekdays_17_20(), utc(2026, 10, 22), utc(2026, 10, 28))
    assert [o.start for o in got] == [utc(2026, 10, 22, 15), utc(2026, 10, 23, 15),
                                      utc(2026, 10, 26, 16), utc(2026, 10, 27, 16)]
    assert all(o.end - o.start == timedelta(hours=3) for o in got)


def test_exclusion_dates_are_left_out():
    got = occurrences(weekdays_17_20(exclusion_dates=[date(2026, 3, 27), date(2026, 3, 30)]),
                      utc(2026, 3, 26), utc(2026, 4, 1))
    assert [o.day for o in got] == [date(2026, 3, 26), date(2026, 3, 31)]


def test_range_is_half_open_on_start_times():
    schedule = weekdays_17_20()
    assert [o.day for o in occurrences(schedule, utc(2026, 3, 26, 16), utc(2026, 3, 27, 16))] == [date(2026, 3, 26)]
    assert occurrences(schedule, utc(2026, 3, 26, 16, 0, 1), utc(2026, 3, 27, 16)) == []
    assert occurrences(schedule, utc(2026, 3, 27), utc(2026, 3, 26)) == []


def sunday(start: time, end: time) -> ProgramSchedule:
    return ProgramSchedule(time_zone="Europe/Paris", rules=[ScheduleRule(days=["sun"], start=start, end=end)])


def test_window_containing_the_spring_gap_is_an_hour_shorter():
    [o] = occurrences(sunday(time(1), time(4)), utc(2026, 3, 29), utc(2026, 3, 30))
    assert (o.start, o.end) == (utc(2026, 3, 29, 0), utc(2026, 3, 29, 2))  # 01:00 CET .. 04:00 CEST


def test_nonexistent_local_start_moves_forward_by_the_gap():
    [o] = occurrences(sunday(time(2, 30), time(5)), utc(2026, 3, 29), utc(2026, 3, 30))
    assert o.start == utc(2026, 3, 29, 1, 30)  # read with the CET offset: the instant of 03:30 CEST
    assert o.end == utc(2026, 3, 29, 3)


def test_window_entirely_inside_the_gap_is_skipped():
    assert occurrences(sunday(time(2), time(3)), utc(2026, 3, 29), utc(2026, 3, 30)) == []
    # ... but not on the Sundays around it.
    assert len(occurrences(sunday(time(2), time(3)), utc(2026, 3, 20), utc(2026, 4, 6))) == 2


def test_ambiguous_local_time_is_the_first_instant():
    [o] = occurrences(sunday(time(2, 30), time(3, 30)), utc(2026, 10, 25), utc(2026, 10, 26))
    assert o.start == utc(2026, 10, 25, 0, 30)  # 02:30 CEST, not 02:30 CET
    assert o.end == utc(2026, 10, 25, 2, 30)  # 03:30 CET: the window holds the repeated hour


def test_other_zone():
    schedule = ProgramSchedule(time_zone="America/New_York",
                               rules=[ScheduleRule(days=["mon"], start=time(17), end=time(20))])
    [o] = occurrences(schedule, utc(2026, 3, 9), utc(2026, 3, 10))
    assert o.start == utc(2026, 3, 9, 21)  # EDT since 2026-03-08


@pytest.mark.parametrize("bad", ["Mars/Olympus", "", "../etc/passwd", "/usr/share/zoneinfo/UTC", "Europe/"])
def test_unknown_time_zone_is_refused(bad):
    with pytest.raises(ValidationError, match="time_zone"):
        ProgramSchedule(time_zone=bad, rules=[])


def test_end_before_start_is_refused():
    with pytest.raises(ValidationError, match="end must be after start"):
        ScheduleRule(days=["mon"], start=time(20), end=time(17))


def test_two_windows_on_one_day_are_refused():
    with pytest.raises(ValidationError, match="one window per day"):
        ProgramSchedule(time_zone="UTC", rules=[ScheduleRule(days=["mon", "tue"], start=time(7), end=time(9)),
                                                ScheduleRule(days=["tue"], start=time(17), end=time(19))])


def test_occurrence_event_ids_round_trip():
    event_id = occurrence_event_id("peak-saver", date(2026, 3, 30))
    assert event_id == "prg-peak-saver-20260330"
    assert parse_occurrence_event_id(event_id) == ("peak-saver", date(2026, 3, 30), 0)
    revived = occurrence_event_id("peak-saver", date(2026, 3, 30), 2)
    assert revived == "prg-peak-saver-20260330r2"
    assert parse_occurrence_event_id(revived) == ("peak-saver", date(2026, 3, 30), 2)
    # A program whose id looks like an occurrence's is still told apart by the trailing date.
    assert parse_occurrence_event_id("prg-peak-20260330r2-20260401") == ("peak-20260330r2", date(2026, 4, 1), 0)
    assert parse_occurrence_event_id("prg-peak-20260330r0") is None
    assert parse_occurrence_event_id("evt-1234") is None
    assert parse_occurrence_event_id("prg-x-20261399") is None


def test_program_record_checks_ids():
    schedule = weekdays_17_20()
    with pytest.raises(ValidationError, match="program_id"):
        ProgramRecord(program_id="a.b", market_context="http://mc", schedule=schedule)
    with pytest.raises(ValidationError, match="program_id"):
        ProgramRecord(program_id="p" * 101, market_context="http://mc", schedule=schedule)
    record = ProgramRecord(program_id="p", market_context="http://mc", schedule=schedule, ven_ids=["a", "a", "b"])
    assert record.ven_ids == ["a", "b"]
    assert ProgramRecord.model_validate_json(record.to_bytes()) == record
