"""15-minute rollups kept by the readings merge: they equal the aggregates of the stored readings
through re-sent reports, redelivered batches, a full replay and two writers merging overlapping
points at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from adrstack.shared.messages import Reading, ReportData
from adrstack.telemetry.rows import RowBatch
from adrstack.telemetry.store import write_batch
from tests.helpers import eventually

# On a bucket boundary, so that reports straddle buckets (:15, :30, ...).
T0 = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)

# What the rollups must hold: the same aggregates computed from the stored readings.
FROM_READINGS = """
SELECT ven_id, date_bin(interval '15 minutes', at, TIMESTAMPTZ '1970-01-01 00:00:00+00'), report_specifier_id, r_id,
       coalesce(resource_id, ''), coalesce(measurement, ''), coalesce(unit, ''), count(*)::int, sum(value), min(value),
       max(value)
FROM readings GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
ROLLUPS = "SELECT ven_id, bucket, report_specifier_id, r_id, resource_id, measurement, unit, n, total, mn, mx " \
          "FROM readings_15m"


async def rollups_match_readings(harness) -> int:
    """Assert the rollups equal the readings' aggregates; the number of readings they count."""
    expected = sorted(await harness.rows(FROM_READINGS))
    assert expected, "no readings stored"
    assert sorted(await harness.rows(ROLLUPS)) == expected
    return sum(row[7] for row in expected)


def report(ven_id: str, points: list[tuple[str, datetime, float]], unit: str | None = "W") -> ReportData:
    return ReportData(ven_id=ven_id, report_specifier_id="rs", readings=[
        Reading(report_specifier_id="rs", r_id=r_id, at=at, value=value, unit=unit, resource_id="meter-1")
        for r_id, at, value in points])


async def settled(harness, durable: str | None = None) -> bool:
    info = await harness.consumer_info(durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_resent_reports_a_crash_before_ack_and_a_full_replay_count_each_reading_once(harness):
    s = harness.subjects
    fast = harness.settings_with(ack_wait_seconds=2.0)
    points = [("p", T0 + timedelta(minutes=5 * i), float(i)) for i in range(12)]  # 4 buckets of 3
    await harness.publish(s.report_data("ven-1"), report("ven-1", points))
    # Re-sent with other values (first wins: ignored) and one new point; a unit-less rID beside it.
    await harness.publish(s.report_data("ven-1"), report("ven-1", [(r, at, v + 100) for r, at, v in points]
                                                            + [("p", T0 + timedelta(minutes=7), 50.0)]))
    await harness.publish(s.report_data("ven-1"), report("ven-1", [("q", T0, 2.0), ("q", T0 + timedelta(seconds=1), 4.0)],
                                                            unit=None))

    class Crash(Exception):
        pass

    async def crash(msgs):
        raise Crash("killed between commit and ack")

    consumer, task = await harness.start_consumer(fast, after_commit=crash)
    with pytest.raises(Crash):
        await task
    await consumer.stop()
    assert await rollups_match_readings(harness) == 15  # committed, never acked

    await harness.start_consumer(fast)  # the batch comes again
    await eventually(lambda: settled(harness), timeout=15, message="redelivered batch acked")
    assert (await harness.consumer_info()).delivered.consumer_seq >= 6  # each message twice
    await harness.start_consumer(harness.settings_with(durable_name="replay"))  # and the whole stream again
    await eventually(lambda: settled(harness, "replay"), timeout=15, message="replay acked")

    assert await rollups_match_readings(harness) == 15
    assert await harness.rows("select bucket, n, total, mn, mx from readings_15m where r_id = 'p' order by bucket") == [
        (T0, 4, 0.0 + 1.0 + 2.0 + 50.0, 0.0, 50.0), (T0 + timedelta(minutes=15), 3, 12.0, 3.0, 5.0),
        (T0 + timedelta(minutes=30), 3, 21.0, 6.0, 8.0), (T0 + timedelta(minutes=45), 3, 30.0, 9.0, 11.0)]
    assert await harness.rows("select unit, n, total from readings_15m where r_id = 'q'") == [("", 2, 6.0)]


async def test_two_consumers_merging_overlapping_points_roll_each_up_once(harness):
    """Two replicas on one durable, small batches, VENs re-sending reports (the same points under
    a new message id): both merge the same rollup rows at once."""
    s = harness.subjects
    small = harness.settings_with(batch_size=20)
    one, _ = await harness.start_consumer(small)
    two, _ = await harness.start_consumer(small)
    for k in range(300):
        ven = f"ven-{k % 7}"
        points = [(f"r{j % 3}", T0 + timedelta(seconds=30 * (k // 7) + j), float(k * 10 + j)) for j in range(10)]
        await harness.publish(s.report_data(ven), report(ven, points))
        if k % 3 == 0:
            await harness.publish(s.report_data(ven), report(ven, points))
    await eventually(lambda: settled(harness), timeout=60, message="all acked")
    assert one.stored > 0 and two.stored > 0, (one.stored, two.stored)
    assert (await harness.consumer_info()).num_redelivered == 0  # no batch failed (no deadlock)
    assert await rollups_match_readings(harness) == 3000


async def test_concurrent_batches_over_the_same_buckets_neither_deadlock_nor_double_count(harness):
    """Two writers, each its own transaction per batch, with overlapping points of many VENs in
    opposite stream orders: the merge's key order keeps them from deadlocking."""
    def batch(vens, offset: int) -> RowBatch:
        facts = [report(f"ven-{v}", [(f"r{j % 2}", T0 + timedelta(minutes=j), float(v * 100 + j))
                                     for j in range(offset, offset + 40)]) for v in vens]
        return RowBatch.of(facts)

    async def write(b: RowBatch) -> None:
        async with await psycopg.AsyncConnection.connect(harness.settings.database_url) as conn:
            async with conn.transaction():
                await write_batch(conn, b)

    for offset in range(0, 60, 10):  # each round overlaps the previous one and the other writer
        await asyncio.wait_for(asyncio.gather(write(batch(range(12), offset)),
                                              write(batch(reversed(range(12)), offset + 5))), 30)
    assert await rollups_match_readings(harness) == 12 * 95
