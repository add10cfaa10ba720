"""The simulated building load: plausible, reproducible, and lower while an opted-in event is active."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from adrstack.simulator.load import SIMPLE_SHED, BuildingLoad, Segment, daily_shape, segments_from_event

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
