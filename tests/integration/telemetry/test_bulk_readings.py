"""Readings on the bulk path (COPY into staging, merged on the natural key): first wins, any
timestamp is stored, and telemetry replicas sharing the durable store each point once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.shared.messages import Reading, ReportData
from tests.helpers import eventually

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)


def report(ven_id: str, points: list[tuple[str, datetime, float]], unit: str = "W") -> ReportData:
    return ReportData(ven_id=ven_id, report_specifier_id="rs", readings=[
        Reading(report_specifier_id="rs", r_id=r_id, at=at, value=value, unit=unit) for r_id, at, value in points])


async def settled(harness, durable: str | None = None) -> bool:
    info = await harness.consumer_info(durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_correction_of_a_stored_point_is_ignored_first_wins(harness):
    s = harness.subjects
    await harness.start_consumer()
    await harness.publish(s.report_data("ven-1"), report("ven-1", [("p", T0, 1.0)]))
    await eventually(lambda: harness.scalar("select count(*) from readings"), timeout=10, message="stored")

    # The VEN sends that point again with another value (and unit), beside a new point.
    await harness.publish(s.report_data("ven-1"), report("ven-1", [("p", T0, 2.0), ("q", T0, 3.0)], unit="kW"))
    await eventually(lambda: settled(harness), timeout=10, message="acked")
    assert await harness.rows("select r_id, value, unit from readings order by r_id") == [
        ("p", 1.0, "W"), ("q", 3.0, "kW")]


async def test_readings_far_in_the_past_or_future_are_stored(harness):
    s = harness.subjects
    far = [("old", datetime(1971, 1, 1, tzinfo=timezone.utc), 1.0),
           ("future", datetime(2999, 12, 31, tzinfo=timezone.utc), 2.0),
           ("now", T0, 3.0)]
    await harness.publish(s.report_data("ven-1"), report("ven-1", far))
    await harness.start_consumer()
    await eventually(lambda: settled(harness), timeout=10, message="acked")
    info = await harness.consumer_info()
    assert info.num_redelivered == 0
    placed = dict(await harness.rows("select r_id, tableoid::regclass::text from readings"))
    assert placed == {"old": "readings_default", "future": "readings_default",
                      "now": f"readings_p{T0:%Y%m%d}"}


async def test_two_consumers_share_the_durable_and_store_each_point_once(harness):
    """Two telemetry replicas on one durable split the stream; VENs re-send some reports (a new
    message id, the same points), so both replicas merge overlapping points at once."""
    s = harness.subjects
    small = harness.settings_with(batch_size=20)
    one, _ = await harness.start_consumer(small)
    two, _ = await harness.start_consumer(small)
    expected = {}
    for k in range(300):
        ven = f"ven-{k % 7}"
        points = [(f"r{j}", T0 + timedelta(minutes=k // 7), float(k * 10 + j)) for j in range(10)]
        await harness.publish(s.report_data(ven), report(ven, points))
        if k % 3 == 0:  # a re-sent copy
            await harness.publish(s.report_data(ven), report(ven, points))
        for r_id, at, value in points:
            expected[(ven, r_id, at)] = value
    await eventually(lambda: settled(harness), timeout=30, message="all acked")
    rows = await harness.rows("select ven_id, r_id, at, value from readings")
    assert len(rows) == len(expected) == 3000
    assert {(v, r, at): value for v, r, at, value in rows} == expected
    assert one.stored + two.stored == 400
    assert one.stored > 0 and two.stored > 0, (one.stored, two.stored)
    info = await harness.consumer_info()
    assert info.num_redelivered == 0
