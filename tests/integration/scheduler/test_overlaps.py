"""2.0b rule 18 (A_E3_0530) through real scheduler replicas over real NATS: a program with
refuse_overlaps makes its market context refuse overlapping events — a create or modify that would
overlap is refused naming start_at and stores nothing; back-to-back events, other market contexts,
programs without the option and cancelled events do not block; a program's own occurrence that would
overlap is skipped (logged once) and the planner carries on."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

from adrstack.shared import kv_keys
from adrstack.shared.messages import EventStatus
from adrstack.shared.programs import ProgramRecord, ProgramSchedule, ScheduleRule, occurrence_event_id

from ...helpers import eventually
from .test_programs import ALL_DAYS, local, midday_zone, put

M, OTHER = "http://mc/no-overlaps", "http://mc/elsewhere"
BASE = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(microsecond=0)


def guard(market_context: str = M, refuse: bool = True, program_id: str = "guard") -> ProgramRecord:
    return ProgramRecord(program_id=program_id, market_context=market_context, refuse_overlaps=refuse,
                         schedule=ProgramSchedule(time_zone="UTC"))


def create(event_id: str, start_minutes: int, minutes: int = 60, market_context: str = M, **extra) -> dict:
    return {"id": str(uuid.uuid4()), "event_id": event_id, "ven_ids": ["ven-1"], "market_context": market_context,
            "start_at": (BASE + timedelta(minutes=start_minutes)).isoformat(),
            "intervals": [{"duration": f"PT{minutes}M", "payload": 1.0}], **extra}


async def running(harness, *programs: ProgramRecord):
    await harness.register_ven("ven-1")
    for record in programs:
        await put(harness, record)
    return await harness.start_replica()


async def event_keys(harness) -> list[str]:
    kv = await harness.js.key_value(harness.settings.events_bucket)
    return sorted(await kv.keys())


def refused_on_start_at(reply) -> bool:
    return (not reply.ok and reply.error.code == "conflict" and reply.error.field == "start_at"
            and "A_E3_0530" in reply.error.message)


async def test_an_overlapping_create_is_refused_and_stores_nothing(harness):
    await running(harness, guard())
    assert (await harness.request("create", create("evt-a", 0))).ok
    reply = await harness.request("create", create("evt-b", 30))
    assert refused_on_start_at(reply), reply
    assert "evt-a" in reply.error.message
    assert await event_keys(harness) == [kv_keys.event_key("evt-a")]
    assert await harness.count("evt-b", "created") == 0
    # A market-context target counts as the market context too.
    targeted = await harness.request("create", create("evt-c", 30, market_context=OTHER, market_contexts=[M]))
    assert refused_on_start_at(targeted), targeted


async def test_back_to_back_other_contexts_and_programs_without_the_option_are_accepted(harness):
    await running(harness, guard(), guard(OTHER, refuse=False, program_id="free"))
    assert (await harness.request("create", create("evt-a", 0, 60))).ok
    assert (await harness.request("create", create("evt-next", 60, 30))).ok  # starts as evt-a ends
    assert (await harness.request("create", create("evt-before", -30, 30))).ok  # ends as evt-a starts
    assert (await harness.request("create", create("evt-o1", 10, market_context=OTHER))).ok
    assert (await harness.request("create", create("evt-o2", 20, market_context=OTHER))).ok  # overlaps evt-o1
    assert (await harness.request("create", create("evt-x", 20, market_context="http://mc/none"))).ok


async def test_randomization_is_part_of_the_window(harness):
    await running(harness, guard())
    assert (await harness.request("create", create("evt-a", 0, 60, randomization="PT10M"))).ok
    assert refused_on_start_at(await harness.request("create", create("evt-b", 65)))
    assert (await harness.request("create", create("evt-c", 70))).ok


async def test_a_modify_that_would_overlap_is_refused(harness):
    await running(harness, guard())
    assert (await harness.request("create", create("evt-a", 0))).ok
    assert (await harness.request("create", create("evt-b", 120))).ok
    moved = {"event_id": "evt-b", "start_at": (BASE + timedelta(minutes=30)).isoformat()}
    assert refused_on_start_at(await harness.request("modify", moved))
    longer = {"event_id": "evt-a", "intervals": [{"duration": "PT3H", "payload": 1.0}]}
    assert refused_on_start_at(await harness.request("modify", longer))
    assert (await harness.stored("evt-a")).modification_number == 0
    assert (await harness.stored("evt-b")).modification_number == 0
    assert await harness.count("evt-b", "modified") == 0
    # Changes that create no overlap go through.
    later = {"event_id": "evt-b", "start_at": (BASE + timedelta(minutes=60)).isoformat()}
    assert (await harness.request("modify", later)).ok


async def test_a_cancelled_event_no_longer_blocks(harness):
    await running(harness, guard())
    assert (await harness.request("create", create("evt-a", 0))).ok
    assert refused_on_start_at(await harness.request("create", create("evt-b", 30)))
    assert (await harness.request("cancel", {"event_id": "evt-a"})).ok
    assert (await harness.request("create", create("evt-b", 30))).ok


async def test_the_option_follows_the_program(harness):
    replica = await running(harness, guard(refuse=False))
    assert (await harness.request("create", create("evt-a", 0))).ok
    assert (await harness.request("create", create("evt-b", 30))).ok  # allowed: the option is off
    await put(harness, guard())
    await eventually(lambda: replica.planner.programs.get("guard").refuse_overlaps, message="program mirrored")
    assert refused_on_start_at(await harness.request("create", create("evt-c", 45)))
    # evt-a and evt-b overlapped before the rule applied: changing evt-b without a new overlap is allowed.
    assert (await harness.request("modify", {"event_id": "evt-b", "vtn_comment": "still here"})).ok


async def test_an_occurrence_that_would_overlap_is_skipped_once_and_the_planner_carries_on(harness, caplog):
    harness.settings = harness.settings.model_copy(update={"program_horizon": timedelta(days=1, hours=12),
                                                           "program_plan_seconds": 0.3})
    tz = midday_zone()
    today, at = local(tz, minutes=30)
    _, until = local(tz, minutes=90)
    replica = await running(harness)
    blocker = datetime.combine(today, at, tzinfo=tz).astimezone(timezone.utc) + timedelta(minutes=20)
    body = {"id": str(uuid.uuid4()), "event_id": "evt-adhoc", "ven_ids": ["ven-1"], "market_context": M,
            "start_at": blocker.isoformat(), "intervals": [{"duration": "PT30M", "payload": 1.0}]}
    assert (await harness.request("create", body)).ok
    program = ProgramRecord(program_id="peak", market_context=M, ven_ids=["ven-1"], notification=timedelta(0),
                            refuse_overlaps=True,
                            schedule=ProgramSchedule(time_zone=tz.key,
                                                     rules=[ScheduleRule(days=ALL_DAYS, start=at, end=until)]))
    caplog.set_level(logging.WARNING, logger="adrstack.scheduler.programs")
    await put(harness, program)
    todays, tomorrows = occurrence_event_id("peak", today), occurrence_event_id("peak", today + timedelta(days=1))
    await eventually(lambda: _has(harness, tomorrows), message="tomorrow's occurrence created")
    passes = replica.planner.passes
    await eventually(lambda: replica.planner.passes >= passes + 3, message="more planner passes")
    assert kv_keys.event_key(todays) not in await event_keys(harness)
    skipped = [r for r in caplog.records if todays in r.getMessage() and "A_E3_0530" in r.getMessage()]
    assert len(skipped) == 1, [r.getMessage() for r in caplog.records]
    assert "evt-adhoc" in skipped[0].getMessage()
    # Once the blocking event is cancelled, the occurrence is created after all.
    assert (await harness.request("cancel", {"event_id": "evt-adhoc"})).ok
    await eventually(lambda: _has(harness, todays), message="today's occurrence created once unblocked")
    assert (await harness.stored(todays)).status == EventStatus.FAR


async def _has(harness, event_id: str) -> bool:
    return kv_keys.event_key(event_id) in await event_keys(harness)
