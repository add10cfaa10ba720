"""Opt schedules (EiOpt) persisted: the latest version per (VEN, optID), withdrawals kept, an older
version redelivered or published late never replacing a newer one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.shared.messages import OptSchedule, OptWindow
from tests.helpers import eventually

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def schedule(opt_type: str, at: datetime, **changes) -> OptSchedule:
    fields = dict(ven_id="ven-a", opt_id="opt-1", opt_type=opt_type, market_context="http://m/ctx",
                  resource_ids=["building-1"], windows=[OptWindow(start=T0, duration_seconds=3600)],
                  occurred_at=at)
    fields.update(changes)
    return OptSchedule(**fields)


async def test_the_latest_version_is_kept_and_a_withdrawal_marks_it(harness):
    await harness.start_consumer()
    subject = harness.subjects.opt_schedule("ven-a")
    await harness.publish(subject, schedule("optOut", T0))
    newer = schedule("optIn", T0 + timedelta(minutes=5), windows=[OptWindow(start=T0, duration_seconds=7200)],
                     device_classes=["Hvac"])
    await harness.publish(subject, newer)
    await harness.publish(subject, schedule("optOut", T0 + timedelta(minutes=1)))  # older, arriving late
    await harness.publish(subject, schedule("optIn", T0, opt_id="marker"))  # stored after everything above

    async def marker():
        return await harness.rows("select 1 from opt_schedules where opt_id = 'marker'")
    await eventually(marker, message="every schedule handled")
    ((opt_type, windows, resource_ids, cancelled_at, device_classes),) = await harness.rows(
        "select opt_type, windows, resource_ids, cancelled_at, device_classes from opt_schedules where opt_id = 'opt-1'")
    assert opt_type == "optIn" and device_classes == ["Hvac"]  # P1_2030
    assert windows == [{"start": T0.isoformat(), "duration_seconds": 7200.0}]
    assert resource_ids == ["building-1"] and cancelled_at is None

    withdrawn = newer.model_copy(update={"id": newer.id.__class__(int=newer.id.int + 1), "cancelled": True,
                                         "occurred_at": T0 + timedelta(minutes=9)})
    await harness.publish(subject, withdrawn)

    async def cancelled():
        return await harness.scalar("select cancelled_at from opt_schedules where opt_id = 'opt-1'")
    assert await eventually(cancelled, message="withdrawal stored") == T0 + timedelta(minutes=9)
    assert await harness.scalar("select count(*) from opt_schedules where opt_id = 'opt-1'") == 1
