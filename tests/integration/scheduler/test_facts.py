"""Facts only for committed states, once: racing commands, and a crash between commit and publish."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import datetime, timedelta, timezone

from adrstack.scheduler.facts import record_bytes, transition_fact
from adrstack.shared import kv_keys
from adrstack.shared.messages import Transition

from tests.helpers import eventually

from .test_process import service_env

HOUR = [{"duration": "PT1H", "payload": 1.0}]


def later(**delta) -> str:
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


async def kv_entry(h, event_id: str):
    kv = await h.js.key_value(h.settings.events_bucket)
    return kv, await kv.get(kv_keys.event_key(event_id))


async def check_stream_agrees_with_bucket(harness, event_id: str, answered: dict) -> None:
    stored = await harness.stored(event_id)
    facts = await harness.facts(event_id, "modified")
    # One modified fact per committed modification, in commit order, the last equal to the stored event.
    assert [f.event.modification_number for f in facts] == list(range(1, stored.modification_number + 1))
    assert facts[-1].event == stored
    for fact in facts:
        if fact.event.modification_number in answered:
            assert fact.event == answered[fact.event.modification_number]
    _, entry = await kv_entry(harness, event_id)
    assert "pending_facts" not in json.loads(entry.value)  # settled


async def test_racing_modifies_on_two_replicas_leave_stream_and_bucket_agreeing(harness):
    await harness.register_ven("ven-1")
    replicas = [await harness.start_replica(), await harness.start_replica()]
    assert (await harness.request(
        "create", {"event_id": "ev-race", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=3)}
    )).ok
    answered = {}
    for round_ in range(3):
        # Through the queue group (each replica takes some) and straight into both replicas at once.
        requests = [
            harness.request("modify", {"event_id": "ev-race", "priority": i, "vtn_comment": f"q{round_}-{i}"})
            for i in range(6)
        ]
        direct = [
            replica.handlers.answer(replica.handlers.modify, json.dumps(
                {"event_id": "ev-race", "priority": 100 + i, "vtn_comment": f"d{round_}-{i}"}).encode())
            for i in range(6) for replica in replicas
        ]
        replies = await asyncio.gather(*requests, *direct)
        assert all(r.ok or r.error.code == "conflict" for r in replies), [r.error for r in replies]
        assert sum(r.ok for r in replies) >= 2
        answered.update({r.event.modification_number: r.event for r in replies if r.ok})
    await check_stream_agrees_with_bucket(harness, "ev-race", answered)


async def test_the_loser_of_a_modify_race_publishes_nothing_for_its_lost_state(harness):
    """Replica A reads the event, then stalls before its compare-and-set while replica B modifies
    the same event. A loses, retries on B's state: the stream holds B's change as #1, A's as #2."""
    await harness.register_ven("ven-1")
    a, b = await harness.start_replica(), await harness.start_replica()
    assert (await harness.request(
        "create", {"event_id": "ev-lose", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=3)}
    )).ok
    a_at_cas, b_done = asyncio.Event(), asyncio.Event()
    kv = a.handlers._events
    update = kv.update

    async def stalled_update(*args, **kwargs):
        a_at_cas.set()
        await b_done.wait()
        return await update(*args, **kwargs)

    kv.update = stalled_update
    try:
        a_reply = asyncio.create_task(a.handlers.answer(a.handlers.modify, b'{"event_id": "ev-lose", "priority": 1}'))
        await asyncio.wait_for(a_at_cas.wait(), timeout=10)
        b_reply = await b.handlers.answer(b.handlers.modify, b'{"event_id": "ev-lose", "priority": 2}')
        b_done.set()
        a_reply = await a_reply
    finally:
        kv.update = update
    assert b_reply.ok and b_reply.event.modification_number == 1 and b_reply.event.priority == 2
    assert a_reply.ok and a_reply.event.modification_number == 2 and a_reply.event.priority == 1
    await check_stream_agrees_with_bucket(harness, "ev-lose", {1: b_reply.event, 2: a_reply.event})


async def test_a_commit_whose_facts_were_never_published_is_repaired_at_start(harness):
    """The state a crash leaves: the record committed with its marker, nothing in the stream."""
    await harness.register_ven("ven-1")
    first = await harness.start_replica()
    assert (await harness.request(
        "create", {"event_id": "ev-crash", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=3)}
    )).ok
    await harness.stop_replica(first)
    kv, entry = await kv_entry(harness, "ev-crash")
    stored = await harness.stored("ev-crash")
    committed = stored.model_copy(update={"modification_number": 1, "priority": 7})
    revision = await kv.update(kv_keys.event_key("ev-crash"), record_bytes(committed, [Transition.MODIFIED]),
                               last=entry.revision)
    assert await harness.count("ev-crash", "modified") == 0

    await harness.start_replica()
    facts = await eventually(lambda: harness.facts("ev-crash", "modified"), timeout=10, message="repaired")
    assert len(facts) == 1 and facts[0].event == committed
    assert facts[0].id == transition_fact(committed, Transition.MODIFIED, revision).id
    _, entry = await kv_entry(harness, "ev-crash")
    assert "pending_facts" not in json.loads(entry.value)
    assert await harness.stored("ev-crash") == committed


async def test_a_fact_published_before_the_crash_is_not_published_again(harness):
    """Crash after the publish but before the marker was cleared, beyond the duplicate window:
    the fact is in the stream without a Nats-Msg-Id JetStream remembers, so only the repair's
    look at the stream keeps it single."""
    await harness.register_ven("ven-1")
    first = await harness.start_replica()
    assert (await harness.request(
        "create", {"event_id": "ev-once", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=3)}
    )).ok
    await harness.stop_replica(first)
    kv, entry = await kv_entry(harness, "ev-once")
    committed = (await harness.stored("ev-once")).model_copy(update={"modification_number": 1, "priority": 3})
    revision = await kv.update(kv_keys.event_key("ev-once"), record_bytes(committed, [Transition.MODIFIED]),
                               last=entry.revision)
    fact = transition_fact(committed, Transition.MODIFIED, revision)
    await harness.js.publish(harness.subjects.event("ev-once", "modified"), fact.to_bytes())  # no header
    assert await harness.count("ev-once", "modified") == 1

    for _ in range(2):  # and again after a second restart
        replica = await harness.start_replica()

        async def settled():
            _, e = await kv_entry(harness, "ev-once")
            return "pending_facts" not in json.loads(e.value)

        await eventually(settled, timeout=10, message="marker cleared")
        assert await harness.count("ev-once", "modified") == 1
        await harness.stop_replica(replica)


async def test_killed_process_with_unpublished_facts_publishes_them_once_after_restart(harness):
    """A real scheduler process commits a timed transition, then a modify, while the stream cannot
    take their facts; it is killed (SIGKILL) each time, and the next process publishes the fact once."""
    await harness.register_ven("ven-1")
    env = service_env(harness.settings)
    env["ADRSTACK_TIMER_RESYNC_SECONDS"] = "3600"  # the repair under test is the start-up one
    info = await harness.js.stream_info(harness.settings.stream_name)
    config = info.config
    every_subject = list(config.subjects)

    async def spawn():
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "adrstack.scheduler", env=env,
                                                    stderr=asyncio.subprocess.DEVNULL)

    async def facts_refused(refused: bool):
        # The stream stops (or starts again) capturing event facts: publishes fail after the commits.
        config.subjects = [s for s in every_subject if ".event." not in s] if refused else every_subject
        await harness.js.update_stream(config)

    async def pending():
        _, entry = await kv_entry(harness, "ev-kill")
        return json.loads(entry.value).get("pending_facts")

    proc = await spawn()
    try:
        async def create():
            return (await harness.request("create", {
                "event_id": "ev-kill", "ven_ids": ["ven-1"], "intervals": [{"duration": "PT1H", "payload": 1}],
                "start_at": later(seconds=3)})).ok
        await eventually(create, timeout=30, interval=0.5, message="scheduler process answers")
        assert await harness.count("ev-kill", "created") == 1

        # A timed transition committed, its fact not published, the process killed.
        await facts_refused(True)
        async def active_committed():
            return (await harness.stored("ev-kill")).status.value == "active"
        await eventually(active_committed, timeout=15, message="active committed")
        assert await pending() == ["active"]
        proc.kill()
        await proc.wait()
        await facts_refused(False)
        assert (await harness.stored("ev-kill")).status.value == "active"
        assert await harness.count("ev-kill", "active") == 0

        proc = await spawn()
        await eventually(lambda: harness.count("ev-kill", "active"), timeout=30, interval=0.2, message="repaired")
        assert (await harness.last_fact("ev-kill", "active")).event == await harness.stored("ev-kill")

        # A command committed, its fact not published, the process killed.
        await eventually(lambda: _is_none(pending()), timeout=10, message="active settled")
        await facts_refused(True)
        reply = await harness.request("modify", {"event_id": "ev-kill", "priority": 5})
        assert reply.ok and reply.event.modification_number == 1  # committed: the change stands
        assert await pending() == ["modified"]
        proc.kill()
        await proc.wait()
        await facts_refused(False)
        assert await harness.count("ev-kill", "modified") == 0

        proc = await spawn()
        await eventually(lambda: harness.count("ev-kill", "modified"), timeout=30, interval=0.2, message="repaired")
        stored = await harness.stored("ev-kill")
        assert stored.priority == 5 and (await harness.last_fact("ev-kill", "modified")).event == stored
        await eventually(lambda: _is_none(pending()), timeout=10, message="modified settled")

        # Another restart publishes nothing again.
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=15)
        proc = await spawn()
        cancelled = await eventually(lambda: harness.request("cancel", {"event_id": "ev-kill"}), timeout=30,
                                     interval=0.5)
        assert cancelled.ok and cancelled.event.modification_number == 2
        counts = {t: await harness.count("ev-kill", t) for t in ("created", "active", "modified", "cancelled")}
        assert counts == {"created": 1, "active": 1, "modified": 1, "cancelled": 1}
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _is_none(value) -> bool:
    return (await value) is None
