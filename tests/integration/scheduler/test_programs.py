"""Programs planned into events by real scheduler replicas over real NATS: occurrences created
once (two replicas, a restart), edits following future events and leaving a started one alone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from adrstack.shared import kv_keys
from adrstack.shared.jetstream import ensure_kv
from adrstack.shared.messages import EventStatus
from adrstack.shared.programs import ProgramRecord, ProgramSchedule, ScheduleRule, occurrence_event_id

from ...helpers import eventually

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def midday_zone() -> ZoneInfo:
    """A fixed-offset zone where it is now between 06:00 and 18:00, so that windows starting a
    little from now end the same local day whatever time the test runs."""
    now = datetime.now(timezone.utc)
    for hours in range(-12, 15):
        name = "Etc/GMT" + (f"{-hours:+d}" if hours else "")  # Etc/GMT-2 is UTC+2
        tz = ZoneInfo(name)
        if 6 <= now.astimezone(tz).hour < 18:
            return tz
    raise AssertionError("no zone at midday")


def local(tz: ZoneInfo, **delta) -> tuple[date, time]:
    at = (datetime.now(timezone.utc) + timedelta(**delta)).astimezone(tz)
    return at.date(), at.time().replace(microsecond=0)


def program(tz: ZoneInfo, start: time, end: time, **kw) -> ProgramRecord:
    fields = {"program_id": "peak", "market_context": "http://mc/peak", "ven_ids": ["ven-1"], "level": 2,
              "notification": timedelta(0), **kw}
    schedule = ProgramSchedule(time_zone=tz.key, rules=[ScheduleRule(days=ALL_DAYS, start=start, end=end)],
                               exclusion_dates=fields.pop("exclusion_dates", []))
    return ProgramRecord(schedule=schedule, **fields)


async def start(harness, replicas: int = 1, horizon=timedelta(days=1, hours=12)):
    harness.settings = harness.settings.model_copy(update={"program_horizon": horizon, "program_plan_seconds": 0.5})
    await harness.register_ven("ven-1")
    return [await harness.start_replica() for _ in range(replicas)]


async def put(harness, record: ProgramRecord) -> None:
    kv = await ensure_kv(harness.js, harness.settings.programs_bucket)
    await kv.put(kv_keys.program_key(record.program_id), record.to_bytes())


async def program_event_keys(harness) -> list[str]:
    kv = await harness.js.key_value(harness.settings.events_bucket)
    try:
        keys = await kv.keys()
    except Exception:  # no keys yet
        return []
    return sorted(k for k in keys if k.startswith("event.prg-"))


async def test_replicas_and_a_restart_create_each_occurrence_once(harness):
    replicas = await start(harness, replicas=2)
    tz = midday_zone()
    today, at = local(tz, minutes=30)
    _, until = local(tz, minutes=90)
    await put(harness, program(tz, at, until))
    ids = [occurrence_event_id("peak", today), occurrence_event_id("peak", today + timedelta(days=1))]
    # Today's and tomorrow's are within the horizon (36 h); the day after is not.
    await eventually(lambda: _keys_are(harness, ids), message="both occurrences created")
    first = await harness.stored(ids[0])
    assert first.start_at == datetime.combine(today, at, tzinfo=tz).astimezone(timezone.utc)
    assert first.duration == timedelta(hours=1) and first.intervals[0].payload == 2
    assert first.targets.ven_ids == ["ven-1"] and first.market_context == "http://mc/peak"
    assert first.status == EventStatus.FAR

    # Both replicas planned several times by now.
    await eventually(lambda: all(r.planner.passes >= 2 for r in replicas), message="planner passes")
    for replica in list(replicas):
        await harness.stop_replica(replica)
    restarted = await harness.start_replica()
    await eventually(lambda: restarted.planner.passes >= 2, message="restarted planner passes")

    assert await program_event_keys(harness) == [kv_keys.event_key(i) for i in ids]
    for event_id in ids:
        assert await harness.count(event_id, "created") == 1
        assert await harness.count(event_id, "modified") == 0
        assert (await harness.stored(event_id)).modification_number == 0


async def _keys_are(harness, ids) -> bool:
    return await program_event_keys(harness) == [kv_keys.event_key(i) for i in ids]


async def test_editing_modifies_future_events_and_leaves_the_active_one(harness):
    await start(harness, replicas=2)
    tz = midday_zone()
    today, at = local(tz, seconds=3)
    _, until = local(tz, hours=1)
    await put(harness, program(tz, at, until))
    today_id = occurrence_event_id("peak", today)
    tomorrow_id = occurrence_event_id("peak", today + timedelta(days=1))
    await eventually(lambda: _keys_are(harness, [today_id, tomorrow_id]), message="occurrences created")
    await eventually(lambda: _status(harness, today_id, EventStatus.ACTIVE), message="today's active")
    active_before = await harness.stored(today_id)

    # Later window and level 3.
    _, later_at = local(tz, minutes=20)
    _, later_until = local(tz, hours=2)
    await put(harness, program(tz, later_at, later_until, level=3))
    expected_start = datetime.combine(today + timedelta(days=1), later_at, tzinfo=tz).astimezone(timezone.utc)

    async def tomorrow_modified():
        event = await harness.stored(tomorrow_id)
        return event.modification_number == 1 and event.start_at == expected_start and \
            event.intervals[0].payload == 3
    await eventually(tomorrow_modified, message="tomorrow's event follows the program")
    await eventually(lambda: harness.settled(tomorrow_id), message="tomorrow's modified fact published")
    assert await harness.count(tomorrow_id, "modified") == 1  # once, though two replicas planned it
    now_today = await harness.stored(today_id)
    assert now_today.modification_number == active_before.modification_number == 0
    assert now_today.start_at == active_before.start_at and now_today.intervals[0].payload == 2
    assert await harness.count(today_id, "modified") == 0

    # Tomorrow excluded: its event is cancelled; today's still untouched.
    await put(harness, program(tz, later_at, later_until, level=3, exclusion_dates=[today + timedelta(days=1)]))
    await eventually(lambda: _status(harness, tomorrow_id, EventStatus.CANCELLED), message="tomorrow cancelled")
    await eventually(lambda: harness.settled(tomorrow_id), message="tomorrow's cancelled fact published")
    assert await harness.count(tomorrow_id, "cancelled") == 1
    assert (await harness.stored(today_id)).status == EventStatus.ACTIVE

    # Deleting the program leaves the active event alone too.
    kv = await harness.js.key_value(harness.settings.programs_bucket)
    await kv.delete(kv_keys.program_key("peak"))
    replica = harness.replicas[0]
    passes = replica.planner.passes
    await eventually(lambda: replica.planner.passes >= passes + 2, message="planned after the delete")
    assert (await harness.stored(today_id)).status == EventStatus.ACTIVE
    assert await harness.count(today_id, "cancelled") == 0


async def _status(harness, event_id: str, status: EventStatus) -> bool:
    return (await harness.stored(event_id)).status == status


async def test_a_day_excluded_and_then_back_gets_a_new_event_once(harness):
    """Removing an exclusion brings the day's occurrence back as prg-<id>-<day>r1 (the cancelled
    event is final), created once by two replicas; an operator's cancel of it is not undone."""
    await start(harness, replicas=2)
    tz = midday_zone()
    today, at = local(tz, minutes=30)
    _, until = local(tz, minutes=90)
    tomorrow = today + timedelta(days=1)
    base, revived = occurrence_event_id("peak", tomorrow), occurrence_event_id("peak", tomorrow, 1)
    await put(harness, program(tz, at, until))
    await eventually(lambda: _keys_are(harness, [occurrence_event_id("peak", today), base]), message="planned")

    await put(harness, program(tz, at, until, exclusion_dates=[tomorrow]))
    await eventually(lambda: _status(harness, base, EventStatus.CANCELLED), message="excluded day cancelled")
    await put(harness, program(tz, at, until))
    await eventually(lambda: _keys_are(harness, [occurrence_event_id("peak", today), base, revived]),
                     message="the day back as a new event")
    back = await harness.stored(revived)
    assert back.status == EventStatus.FAR and back.modification_number == 0
    assert back.start_at == datetime.combine(tomorrow, at, tzinfo=tz).astimezone(timezone.utc)
    await eventually(lambda: harness.settled(revived), message="its created fact published")
    assert await harness.count(revived, "created") == 1

    # An operator cancels it: it stays cancelled, and nothing new appears for that day.
    reply = await harness.request("cancel", {"event_id": revived})
    assert reply.ok, reply.error
    replica = harness.replicas[0]
    passes = replica.planner.passes
    await eventually(lambda: replica.planner.passes >= passes + 3, message="planned after the cancel")
    assert await program_event_keys(harness) == [kv_keys.event_key(i) for i in
                                                 (occurrence_event_id("peak", today), base, revived)]
