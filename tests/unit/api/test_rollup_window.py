"""Which part of a bucketed query's window the 15-minute rollups answer: its whole buckets."""

from datetime import datetime, timedelta, timezone

from adrstack.api.readings import rolled_up, rollup_window

AT = datetime(2030, 3, 1, 1, 0, tzinfo=timezone.utc)
M = timedelta(minutes=1)


def test_whole_buckets_inside_the_window():
    assert rollup_window(AT, AT + 60 * M) == {"first": AT, "lo": AT, "hi": AT + 60 * M}
    assert rollup_window(AT + M, AT + 59 * M) == {"first": AT, "lo": AT + 15 * M, "hi": AT + 45 * M}
    assert rollup_window(AT + M, AT + 30 * M) == {"first": AT, "lo": AT + 15 * M, "hi": AT + 30 * M}


def test_a_window_without_a_whole_bucket_is_all_edge():
    assert rollup_window(AT + M, AT + 14 * M) == {"first": AT, "lo": AT + 14 * M, "hi": AT + 14 * M}
    assert rollup_window(AT + M, AT + 29 * M) == {"first": AT, "lo": AT + 29 * M, "hi": AT + 29 * M}
    end = datetime.max.replace(tzinfo=timezone.utc)
    assert rollup_window(end - 10 * M, end) == {"first": end - 14 * M - timedelta(seconds=59, microseconds=999999),
                                                "lo": end, "hi": end}


def test_other_time_zones_align_on_utc():
    paris = timezone(timedelta(hours=1))
    since = datetime(2030, 3, 1, 2, 7, tzinfo=paris)  # 01:07Z
    assert rollup_window(since, since + 60 * M)["lo"] == AT + 15 * M


def test_buckets_that_15_minutes_divide_are_rolled_up():
    assert [s for s in (60, 300, 900, 3600, 86400) if rolled_up(s)] == [900, 3600, 86400]
