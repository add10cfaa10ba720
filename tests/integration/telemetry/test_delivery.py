"""Delivery guarantees: duplicates and redelivery never duplicate rows, garbage is terminated,
and a crash between commit and ack is redelivered without double rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adrstack.shared.messages import Reading, ReportData, VenRegistered
from tests.helpers import eventually

T0 = datetime.now(timezone.utc).replace(microsecond=0)


def report(n: int = 5, ven_id: str = "ven-1") -> ReportData:
    """A fresh message id every call, the same readings every call."""
    return ReportData(
        ven_id=ven_id,
        report_specifier_id="rs-1",
        readings=[
            Reading(report_specifier_id="rs-1", r_id="power", at=T0 + timedelta(seconds=10 * i), value=float(i))
            for i in range(n)
        ],
    )


async def settled(harness, durable: str | None = None) -> bool:
    info = await harness.consumer_info(durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_same_readings_twice_and_a_full_replay_store_each_point_once(harness):
    s = harness.subjects
    first, second = report(), report()
    assert first.id != second.id
    await harness.publish(s.report_data("ven-1"), first)
    await harness.publish(s.report_data("ven-1"), second)
    await harness.start_consumer()
    await eventually(lambda: settled(harness), timeout=10, message="both reports acked")
    assert await harness.scalar("select count(*) from readings") == 5

    # Redeliver everything: a second durable replays the whole stream into the same tables.
    await harness.start_consumer(harness.settings_with(durable_name="replay"))
    await eventually(lambda: settled(harness, "replay"), timeout=10, message="replay acked")
    assert await harness.scalar("select count(*) from readings") == 5
    assert await harness.scalar("select count(distinct at) from readings") == 5


async def test_garbage_is_terminated_and_does_not_block_later_messages(harness):
    s = harness.subjects
    await harness.js.publish(s.report_data("ven-1"), b"\xff this is not a report")
    await harness.js.publish(s.seen("ven-1"), b'{"ven_id": "someone-else"}')
    await harness.publish(s.report_data("ven-1"), report(3))
    await harness.start_consumer()
    await eventually(lambda: harness.scalar("select count(*) from readings"), timeout=10, message="readings")
    assert await harness.scalar("select count(*) from readings") == 3
    await eventually(lambda: settled(harness), timeout=10, message="nothing left pending")
    info = await harness.consumer_info()
    assert info.num_redelivered == 0  # terminated, not retried


async def test_crash_after_commit_before_ack_is_redelivered_exactly_once(harness):
    s = harness.subjects
    fast = harness.settings_with(ack_wait_seconds=2.0)

    class Crash(Exception):
        pass

    async def crash(msgs):
        raise Crash("killed between commit and ack")

    await harness.publish(
        s.ven_registered("ven-1"), VenRegistered(ven_id="ven-1", ven_name="b1", registration_id="r1", occurred_at=T0)
    )
    await harness.publish(s.report_data("ven-1"), report(4))
    consumer, task = await harness.start_consumer(fast, after_commit=crash)
    with pytest.raises(Crash):
        await task
    await consumer.stop()
    # Committed but never acked.
    assert await harness.scalar("select count(*) from readings") == 4
    info = await harness.consumer_info()
    assert info.num_ack_pending == 2

    await harness.start_consumer(fast)
    await eventually(lambda: settled(harness), timeout=15, message="redelivered batch acked")
    info = await harness.consumer_info()
    assert info.num_redelivered == 0 and info.delivered.consumer_seq >= 4  # delivered twice each
    assert await harness.scalar("select count(*) from readings") == 4
    assert await harness.scalar("select count(*) from vens") == 1
