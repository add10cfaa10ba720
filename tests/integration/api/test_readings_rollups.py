"""Bucketed readings read from the 15-minute rollups answer exactly what the raw readings give:
per VEN and aggregated, in 15-minute, 1-hour and 1-day buckets, over windows that start and end
on a bucket boundary or anywhere inside one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from adrstack.api.readings import bucket_statement, rollup_window, rolled_up
from adrstack.shared.rollups import backfill_sql

T0 = datetime(2030, 3, 1, 0, 0, tzinfo=timezone.utc)
SPAN = timedelta(days=2)


@pytest.fixture
async def history(engine):
    """Three VENs over two days at irregular times (every 37 s), integer values (exact sums): a
    metered load, a unit-less rID and, for ven-b, a unit change in the middle of a bucket."""
    rows = []
    for i in range(int(SPAN.total_seconds()) // 37):
        at = T0 + timedelta(seconds=37 * i)
        rows.append(("ven-a", "load", "meter-1", "W", at, float(1000 + (i * 7919) % 500)))
        rows.append(("ven-a", "temp", None, None, at, float(i % 40)))
        rows.append(("ven-b", "load", "meter-2", "W" if at < T0 + timedelta(hours=30, minutes=5) else "kW", at,
                     float((i * 104729) % 900)))
        if i % 3 == 0:
            rows.append(("ven-c", "load", "meter-3", "W", at, float(-(i % 17))))
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO readings (ven_id, report_specifier_id, r_id, resource_id, measurement, unit, at, value, "
            "received_at) VALUES (:v, 'usage', :r, :res, 'RealPower', :unit, :at, :value, :at)"),
            [{"v": v, "r": r, "res": res, "unit": unit, "at": at, "value": value} for v, r, res, unit, at, value in rows])
        await conn.execute(text(backfill_sql()))
    return len(rows)


WINDOWS = [
    (T0, T0 + SPAN),  # whole buckets only
    (T0 + timedelta(hours=3, minutes=7, seconds=11), T0 + timedelta(hours=40, minutes=52)),  # edges at both ends
    (T0 + timedelta(hours=5, minutes=16), T0 + timedelta(hours=5, minutes=29)),  # inside one bucket
    (T0 + timedelta(hours=5, minutes=16), T0 + timedelta(hours=5, minutes=44)),  # two partial buckets
    (T0 - timedelta(days=1), T0 + timedelta(hours=1, minutes=1)),  # before the data starts
]


def params(vens, since, until, secs) -> dict:
    return {"all": vens is None, "vens": vens or [], "since": since, "until": until, "secs": secs,
            "limit": 100_000, "after_at": None, "k1": "", "k2": "", "k3": "", "k4": "",
            **rollup_window(since, until)}


@pytest.mark.parametrize("secs", [900, 3600, 86400])
@pytest.mark.parametrize("vens", [["ven-b"], ["ven-a", "ven-c"], None], ids=["one", "two", "all"])
async def test_rollups_answer_what_the_raw_readings_give(engine, history, secs, vens):
    assert rolled_up(secs)
    for since, until in WINDOWS:
        for per_ven in ([True, False] if vens == ["ven-b"] else [False]):
            p = params(vens, since, until, secs)
            async with engine.connect() as conn:
                raw = (await conn.execute(text(bucket_statement(per_ven, rolled=False)), p)).all()
                rolled = (await conn.execute(text(bucket_statement(per_ven, rolled=True)), p)).all()
            assert raw, (since, until)
            # Integer values: every sum is exact, so the two agree to the last bit.
            assert [r._asdict() for r in rolled] == [r._asdict() for r in raw], (since, until, per_ven)

