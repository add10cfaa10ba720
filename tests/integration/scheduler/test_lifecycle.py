"""Timed transitions on time, exactly once across replicas, and across a restart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.helpers import eventually


def soon(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


async def create_short_event(h, event_id: str, starts_in: float = 2.0, duration: str = "PT2S"):
    start = soon(starts_in)
    reply = await h.request(
        "create",
        {
            "event_id": event_id,
            "ven_ids": ["ven-1"],
            "intervals": [{"duration": duration, "payload": 1.0}],
            "start_at": start.isoformat(),
        },
    )
    assert reply.ok, reply.error
    return reply.event


async def test_active_then_completed_on_time(harness):
    await harness.register_ven("ven-1")
    await harness.start_replica()
    event = await create_short_event(harness, "ev-timed")
    assert event.status.value == "near"  # inside the default near window

    await eventually(lambda: harness.count("ev-timed", "active"), timeout=10, message="active fired")
    active = await harness.last_fact("ev-timed", "active")
    assert active.event.status.value == "active"
    assert event.start_at <= active.occurred_at <= event.start_at + timedelta(seconds=1.5)

    await eventually(lambda: harness.count("ev-timed", "completed"), timeout=10, message="completed fired")
    completed = await harness.last_fact("ev-timed", "completed")
    assert event.end_at <= completed.occurred_at <= event.end_at + timedelta(seconds=1.5)

    async def stored_completed():
        return (await harness.stored("ev-timed")).status.value == "completed"

    await eventually(stored_completed, timeout=5)


async def test_two_replicas_fire_each_transition_exactly_once(harness):
    """Once in the stream, and once on core NATS too (what `nats sub` and the API's subscriptions
    see): a replica whose mirror lags does not publish the other's fact a second time."""
    await harness.register_ven("ven-1")
    seen: list[tuple[str, str]] = []

    async def on_msg(msg):
        seen.append((msg.subject, msg.headers.get("Nats-Msg-Id") if msg.headers else None))

    sub = await harness.nc.subscribe(harness.subjects.all_event_facts, cb=on_msg)
    await harness.start_replica()
    await harness.start_replica()
    ids = [f"ev-rep-{i}" for i in range(20)]
    for i, event_id in enumerate(ids):
        await create_short_event(harness, event_id, starts_in=1.5, duration="PT1S")

    async def all_completed():
        for event_id in ids:
            if (await harness.stored(event_id)).status.value != "completed":
                return False
        return True

    await eventually(all_completed, timeout=15, message="every event completed")
    for event_id in ids:
        counts = {t: await harness.count(event_id, t) for t in ("created", "near", "active", "completed")}
        assert counts == {"created": 1, "near": 0, "active": 1, "completed": 1}, (event_id, counts)
    await eventually(lambda: len(seen) >= 3 * len(ids), timeout=5, message="every fact on core NATS")
    await harness.nc.flush()
    await sub.unsubscribe()
    assert len(seen) == 3 * len(ids) and len(set(seen)) == len(seen), sorted(seen)


async def test_restarted_scheduler_fires_the_remaining_transitions(harness):
    await harness.register_ven("ven-1")
    first = await harness.start_replica()
    event = await create_short_event(harness, "ev-restart", starts_in=1.0, duration="PT2S")
    await eventually(lambda: harness.count("ev-restart", "active"), timeout=10, message="active fired")
    await harness.stop_replica(first)

    # Nobody runs while the event ends, so nothing can complete it yet.
    await eventually(lambda: datetime.now(timezone.utc) > event.end_at, timeout=10, message="event end passed")
    assert await harness.count("ev-restart", "completed") == 0
    assert (await harness.stored("ev-restart")).status.value == "active"

    await harness.start_replica()
    await eventually(lambda: harness.count("ev-restart", "completed"), timeout=10, message="completed after restart")

    async def stored_completed():
        return (await harness.stored("ev-restart")).status.value == "completed"

    await eventually(stored_completed, timeout=5)
    assert await harness.count("ev-restart", "active") == 1


async def test_scheduler_down_across_the_whole_event_goes_straight_to_completed(harness):
    await harness.register_ven("ven-1")
    first = await harness.start_replica()
    event = await create_short_event(harness, "ev-skip", starts_in=1.0, duration="PT1S")
    await harness.stop_replica(first)
    await eventually(lambda: datetime.now(timezone.utc) > event.end_at, timeout=10, message="event end passed")
    await harness.start_replica()
    await eventually(lambda: harness.count("ev-skip", "completed"), timeout=10, message="completed")
    assert await harness.count("ev-skip", "active") == 0  # the transition reached is the one published


async def test_modify_that_makes_an_event_active_announces_it(harness):
    await harness.register_ven("ven-1")
    await harness.start_replica()
    await create_short_event(harness, "ev-pull", starts_in=3600, duration="PT1H")
    reply = await harness.request("modify", {"event_id": "ev-pull", "start_at": soon(-1).isoformat()})
    assert reply.ok and reply.event.status.value == "active" and reply.event.modification_number == 1
    await eventually(lambda: harness.count("ev-pull", "active"), timeout=5, message="active announced")
    assert (await harness.last_fact("ev-pull", "active")).event.modification_number == 1


async def test_an_open_ended_event_stays_active_until_cancelled(harness):
    """Rule 47: duration 0 is open-ended. It goes active on time and no clock completes it: an
    event of one second started beside it completes, the open-ended one stays active; a cancel ends it."""
    await harness.register_ven("ven-1")
    await harness.start_replica()
    opened = await create_short_event(harness, "ev-open", starts_in=1.0, duration="PT0S")
    assert opened.end_at is None and opened.intervals[0].duration == timedelta(0)
    await create_short_event(harness, "ev-beside", starts_in=1.0, duration="PT1S")
    await eventually(lambda: harness.count("ev-beside", "completed"), timeout=10, message="the other completed")
    assert await harness.count("ev-open", "active") == 1
    assert await harness.count("ev-open", "completed") == 0
    assert (await harness.stored("ev-open")).status.value == "active"

    reply = await harness.request("cancel", {"event_id": "ev-open"})
    assert reply.ok, reply.error
    assert reply.event.status.value == "cancelled" and reply.event.modification_number == 1
    await eventually(lambda: harness.count("ev-open", "cancelled"), timeout=5, message="cancelled fact")
    assert await harness.count("ev-open", "completed") == 0
