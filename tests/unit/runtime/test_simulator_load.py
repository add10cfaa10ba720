"""The simulated building load: plausible, reproducible, and lower while an opted-in event is active."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from adrstack.simulator.load import SIMPLE_SHED, BuildingLoad, Segment, daily_shape, opts_out, segments_from_event

NOON = datetime(2026, 6, 3, 13, 0, tzinfo=timezone.utc)
NIGHT = datetime(2026, 6, 3, 2, 0, tzinfo=timezone.utc)


def test_peaks_are_40_to_250_kw_and_the_same_in_every_process():
    peaks = [BuildingLoad(i).peak_kw for i in range(1, 200)]
    assert all(40 <= p <= 250 for p in peaks)
    assert len({round(p) for p in peaks}) > 50  # buildings differ
    assert BuildingLoad(7).peak_kw == BuildingLoad(7).peak_kw


def test_daily_shape_peaks_early_afternoon_and_dips_at_night():
    assert daily_shape(13) == pytest.approx(1.0)
    assert daily_shape(2) == daily_shape(22) < daily_shape(9) < daily_shape(13)


def test_samples_stay_near_the_expected_load():
    b = BuildingLoad(1, rng=random.Random(0))
    for at in (NOON, NIGHT):
        samples = [b.sample_kw(at) for _ in range(500)]
        assert all(0.9 * b.expected_kw(at) <= s <= 1.1 * b.expected_kw(at) for s in samples)
        assert min(samples) != max(samples)  # there is noise
    assert b.sample_watts(NOON) > 1000 * 30


def event(start, *payloads, minutes=30, name="simple", status="far", with_dtstart=True):
    intervals = []
    for i, p in enumerate(payloads):
        iv = {"duration": timedelta(minutes=minutes), "signal_payload": p, "uid": i}
        if with_dtstart:
            iv["dtstart"] = start + i * timedelta(minutes=minutes)
        intervals.append(iv)
    return {"event_descriptor": {"event_id": "e1", "event_status": status},
            "active_period": {"dtstart": start, "duration": len(payloads) * timedelta(minutes=minutes)},
            "event_signals": [{"signal_name": name, "signal_type": "level", "intervals": intervals}]}


@pytest.mark.parametrize("with_dtstart", [True, False])
def test_event_intervals_become_shed_segments(with_dtstart):
    segs = segments_from_event(event(NOON, 2.0, 0.0, 3.0, with_dtstart=with_dtstart))
    assert segs == [Segment(NOON, NOON + timedelta(minutes=30), SIMPLE_SHED[2]),
                    Segment(NOON + timedelta(minutes=60), NOON + timedelta(minutes=90), SIMPLE_SHED[3])]


def test_load_drops_only_while_the_event_is_active():
    b = BuildingLoad(3)
    b.respond_to("e1", segments_from_event(event(NOON, 2.0)))
    assert b.expected_kw(NOON - timedelta(minutes=1)) == pytest.approx(b.baseline_kw(NOON - timedelta(minutes=1)))
    assert b.expected_kw(NOON + timedelta(minutes=5)) == pytest.approx(
        b.baseline_kw(NOON + timedelta(minutes=5)) * (1 - SIMPLE_SHED[2]))
    assert b.expected_kw(NOON + timedelta(minutes=31)) == pytest.approx(b.baseline_kw(NOON + timedelta(minutes=31)))


def test_forget_and_finished_events_restore_the_load():
    b = BuildingLoad(3)
    b.respond_to("e1", segments_from_event(event(NOON, 3.0)))
    b.forget("e1")
    assert b.shed(NOON + timedelta(minutes=1)) == 0
    b.respond_to("e2", segments_from_event(event(NOON, 3.0)))
    b.forget_finished(NOON + timedelta(minutes=10))
    assert b.shed(NOON + timedelta(minutes=10)) == SIMPLE_SHED[3]
    b.forget_finished(NOON + timedelta(hours=1))
    assert b.shed(NOON + timedelta(minutes=10)) == 0


def test_non_simple_signals_shed_a_fixed_share():
    segs = segments_from_event(event(NOON, 50.0, name="LOAD_DISPATCH"))
    assert [s.shed for s in segs] == [0.2]


def test_the_shed_ramps_in_over_the_ramp_up_before_the_start():
    ev = event(NOON, 2.0)
    ev["active_period"]["ramp_up"] = timedelta(minutes=10)
    segs = segments_from_event(ev)
    assert segs[0].ramp_up == timedelta(minutes=10)
    b = BuildingLoad(3)
    b.respond_to("e1", segs)
    assert b.shed(NOON - timedelta(minutes=11)) == 0
    assert b.shed(NOON - timedelta(minutes=5)) == pytest.approx(SIMPLE_SHED[2] / 2)
    assert b.shed(NOON - timedelta(minutes=1)) == pytest.approx(SIMPLE_SHED[2] * 0.9)
    assert b.shed(NOON) == SIMPLE_SHED[2]
    assert b.shed(NOON + timedelta(minutes=30)) == 0


@pytest.mark.parametrize("profile, low_hour, high_hour, peak_range", [
    ("office", 2, 13, (40, 250)), ("home", 13, 19, (3, 12)), ("ev", 12, 20.5, (20, 150))])
def test_profiles_have_their_own_day_and_size(profile, low_hour, high_hour, peak_range):
    b = BuildingLoad(4, profile=profile)
    assert peak_range[0] <= b.peak_kw <= peak_range[1]
    day = datetime(2026, 6, 3, tzinfo=timezone.utc)
    low = b.baseline_kw(day + timedelta(hours=low_hour))
    high = b.baseline_kw(day + timedelta(hours=high_hour))
    assert high == pytest.approx(b.peak_kw, rel=0.05)
    assert low < 0.6 * high


@pytest.mark.parametrize("count, rate, expected", [
    (3, 0.0, []), (3, 0.3, [2]), (10, 0.3, [2, 5, 9]), (4, 0.5, [1, 3]), (3, 1.0, [1, 2, 3])])
def test_round_n_times_rate_vens_opt_out_spread_evenly(count, rate, expected):
    assert [i for i in range(1, count + 1) if opts_out(i, rate)] == expected


def test_a_poll_cancelled_by_the_vens_stop_is_not_logged_as_a_failed_job():
    import asyncio
    import logging

    from adrstack.simulator.__main__ import not_a_cancelled_job

    def record(error: BaseException) -> logging.LogRecord:
        try:
            raise error
        except BaseException:
            import sys
            return logging.LogRecord("apscheduler.executors.default", logging.ERROR, __file__, 1,
                                     'Job "OpenADRClient._poll" raised an exception', None, sys.exc_info())

    assert not not_a_cancelled_job(record(asyncio.CancelledError()))
    assert not_a_cancelled_job(record(ValueError("a real failure")))
