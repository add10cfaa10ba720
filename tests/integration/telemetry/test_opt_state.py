"""Opt responses: one current answer per (VEN, event) and a history with one row per change,
however often the same answer is re-sent, redelivered or written by concurrent consumers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg

from adrstack.shared.messages import OptResponse
from adrstack.telemetry.rows import RowBatch
from adrstack.telemetry.store import write_batch
from tests.helpers import eventually

T0 = datetime.now(timezone.utc).replace(microsecond=0)

STATE = "select ven_id, event_id, modification_number, opt_type, responded_at from event_opt_states order by ven_id, event_id"
HISTORY = ("select ven_id, event_id, modification_number, opt_type, responded_at from event_responses "
           "order by ven_id, event_id, responded_at")


def answer(opt_type: str = "optIn", at: timedelta = timedelta(0), mod: int = 0, ven: str = "ven-1",
           event: str = "ev-1") -> OptResponse:
    """A fresh message id every call (as the gateway's copies after JetStream's duplicate window)."""
    return OptResponse(ven_id=ven, event_id=event, modification_number=mod, opt_type=opt_type,
                       occurred_at=T0 + at, request_id=f"req-{at.total_seconds()}")


async def publish_all(harness, facts: list[OptResponse]) -> None:
    for fact in facts:
        await harness.publish(harness.subjects.opt(fact.ven_id), fact)


async def test_a_resent_answer_is_one_state_and_one_history_row(harness):
    # Re-sent on every distribution, also long after JetStream's 2-minute duplicate window.
    copies = [answer(at=timedelta(seconds=s)) for s in (0, 5, 30, 180, 600, 601)]
    assert len({c.id for c in copies}) == len(copies)
    await harness.start_consumer()
    await publish_all(harness, copies[:3])
    await eventually(lambda: _delivered(harness, 3), timeout=10, message="first copies acked")
    assert await harness.scalar("select count(*) from event_responses") == 1
    await publish_all(harness, copies[3:])
    await eventually(lambda: _delivered(harness, len(copies)), timeout=10, message="every copy acked")
    assert await harness.rows(STATE) == [("ven-1", "ev-1", 0, "optIn", T0)]
    assert await harness.rows(HISTORY) == [("ven-1", "ev-1", 0, "optIn", T0)]
    assert await harness.rows("select id from event_responses") == [(copies[0].id,)]


async def test_a_change_of_answer_is_history_and_a_late_copy_changes_nothing(harness):
    await harness.start_consumer()
    opt_in, opt_out = answer("optIn"), answer("optOut", timedelta(minutes=1))
    await publish_all(harness, [opt_in, answer("optIn", timedelta(seconds=30)), opt_out])
    await eventually(lambda: _rows_equal(harness, STATE, [("ven-1", "ev-1", 0, "optOut", T0 + timedelta(minutes=1))]),
                     timeout=10, message="optOut in force")
    assert await harness.rows(HISTORY) == [("ven-1", "ev-1", 0, "optIn", T0),
                                          ("ven-1", "ev-1", 0, "optOut", T0 + timedelta(minutes=1))]
    # A copy of the old optIn arriving late (older than the optOut) is not a change back...
    await publish_all(harness, [answer("optIn", timedelta(seconds=45)), answer("optOut", timedelta(minutes=2))])
    await eventually(lambda: _delivered(harness, 5), timeout=10, message="late copies acked")
    assert [r[3] for r in await harness.rows(HISTORY)] == ["optIn", "optOut"]
    assert (await harness.rows(STATE))[0][3] == "optOut"
    # ...but a newer optIn is: the VEN changed its mind again.
    await publish_all(harness, [answer("optIn", timedelta(minutes=3)), answer("optIn", timedelta(minutes=13))])
    await eventually(lambda: _delivered(harness, 7), timeout=10, message="flip back acked")
    assert await harness.rows(STATE) == [("ven-1", "ev-1", 0, "optIn", T0 + timedelta(minutes=3))]
    assert [(r[3], r[4]) for r in await harness.rows(HISTORY)] == [
        ("optIn", T0), ("optOut", T0 + timedelta(minutes=1)), ("optIn", T0 + timedelta(minutes=3))]


async def test_each_modification_gets_its_own_answer(harness):
    await harness.start_consumer()
    await publish_all(harness, [
        answer("optIn", timedelta(0), mod=0),
        answer("optIn", timedelta(seconds=10), mod=0),
        answer("optIn", timedelta(minutes=1), mod=1),  # the same opt type, to a new modification
        answer("optIn", timedelta(minutes=2), mod=1),
        answer("optIn", timedelta(minutes=3), mod=0),  # a redelivered answer to the old modification
        answer("optOut", timedelta(minutes=1), mod=0, ven="ven-2"),
        answer("optIn", timedelta(minutes=1), mod=0, event="ev-2"),
    ])
    await eventually(lambda: _delivered(harness, 7), timeout=10, message="all acked")
    assert await harness.rows(STATE) == [
        ("ven-1", "ev-1", 1, "optIn", T0 + timedelta(minutes=1)),
        ("ven-1", "ev-2", 0, "optIn", T0 + timedelta(minutes=1)),
        ("ven-2", "ev-1", 0, "optOut", T0 + timedelta(minutes=1)),
    ]
    assert await harness.rows(HISTORY) == [
        ("ven-1", "ev-1", 0, "optIn", T0),
        ("ven-1", "ev-1", 1, "optIn", T0 + timedelta(minutes=1)),
        ("ven-1", "ev-2", 0, "optIn", T0 + timedelta(minutes=1)),
        ("ven-2", "ev-1", 0, "optOut", T0 + timedelta(minutes=1)),
    ]


async def test_two_consumers_and_a_full_replay_add_no_row(harness):
    facts = []
    for v in range(4):
        for copy in range(6):  # each VEN re-sends its answer; one changes its mind half way
            opt_type = "optOut" if v == 3 and copy >= 3 else "optIn"
            facts.append(answer(opt_type, timedelta(seconds=copy * 40), ven=f"ven-{v}"))
    small = harness.settings_with(batch_size=3)
    await harness.start_consumer(small)
    await harness.start_consumer(small)  # the same durable: they split the stream
    await publish_all(harness, facts)
    await eventually(lambda: _delivered(harness, len(facts)), timeout=15, message="all acked")
    expected_state = [(f"ven-{v}", "ev-1", 0, "optOut" if v == 3 else "optIn",
                       T0 + timedelta(seconds=120 if v == 3 else 0)) for v in range(4)]
    assert await harness.rows(STATE) == expected_state
    assert await harness.scalar("select count(*) from event_responses") == 5

    # Every fact delivered again into the same tables (a replay / restarted telemetry).
    await harness.start_consumer(harness.settings_with(durable_name="replay"))
    await eventually(lambda: _delivered(harness, len(facts), "replay"), timeout=15, message="replay acked")
    assert await harness.rows(STATE) == expected_state
    assert await harness.scalar("select count(*) from event_responses") == 5


async def test_concurrent_writers_of_the_same_answer_serialize_on_the_state_row(harness):
    """Two telemetry processes write the same answer (two copies) at once: the second waits for
    the first one's commit and then finds nothing new."""
    url = harness.settings.database_url
    first, second = RowBatch.of([answer()]), RowBatch.of([answer(at=timedelta(seconds=1))])
    a = await psycopg.AsyncConnection.connect(url)
    b = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        await write_batch(a, first)  # a transaction left open
        pid_b = b.info.backend_pid

        async def write_b():
            async with b.transaction():
                await write_batch(b, second)

        task = asyncio.create_task(write_b())

        async def b_waits_for_a_lock():
            rows = await harness.rows("select wait_event_type from pg_stat_activity where pid = %s", pid_b)
            return rows and rows[0][0] == "Lock"

        await eventually(b_waits_for_a_lock, timeout=10, message="the second writer waits")
        await a.commit()
        await asyncio.wait_for(task, 10)
    finally:
        await a.close()
        await b.close()
    assert await harness.rows(HISTORY) == [("ven-1", "ev-1", 0, "optIn", T0)]
    assert await harness.rows(STATE) == [("ven-1", "ev-1", 0, "optIn", T0)]


async def _rows_equal(harness, sql: str, expected) -> bool:
    return await harness.rows(sql) == expected


async def _delivered(harness, n: int, durable: str | None = None) -> bool:
    info = await harness.consumer_info(durable)
    return info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq >= n
