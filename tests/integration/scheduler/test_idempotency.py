"""Commands with a client idempotency key are applied once: the same key again returns the earlier
reply and changes nothing — also through another replica and after a restart; the same key for
another request is a conflict."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest

HOUR = [{"duration": "PT1H", "payload": 2.0}]


START = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()


@pytest.fixture
async def running(harness):
    await harness.register_ven("ven-1")
    await harness.start_replica()
    return harness


def create(key: str, **extra) -> dict:
    # Each request is a new message (its own id and time), as a client retrying would send.
    return {"id": str(uuid.uuid4()), "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": START,
            "idempotency_key": key, **extra}


async def test_a_retried_create_returns_the_first_event_and_creates_no_other(running):
    first = await running.request("create", create("create-42"))
    again = await running.request("create", create("create-42"))
    assert first.ok and again.ok
    assert again.event.event_id == first.event.event_id  # no event_id given: the scheduler chose one, once
    assert await running.count(first.event.event_id, "created") == 1
    kv = await running.js.key_value(running.settings.events_bucket)
    assert len(await kv.keys()) == 1


async def test_concurrent_retries_through_two_replicas_create_once(running):
    await running.start_replica()
    replies = await asyncio.gather(*(running.request("create", create("burst")) for _ in range(6)))
    assert all(r.ok for r in replies)
    assert len({r.event.event_id for r in replies}) == 1
    kv = await running.js.key_value(running.settings.events_bucket)
    assert len(await kv.keys()) == 1


async def test_a_retried_modify_and_cancel_change_nothing_more(running):
    created = await running.request("create", create("c1"))
    event_id = created.event.event_id
    modify = {"event_id": event_id, "intervals": [{"duration": "PT30M", "payload": 3.0}], "idempotency_key": "m1"}
    first = await running.request("modify", {**modify, "id": str(uuid.uuid4())})
    again = await running.request("modify", {**modify, "id": str(uuid.uuid4())})
    assert first.ok and again.ok and first.event.modification_number == again.event.modification_number == 1
    assert (await running.stored(event_id)).modification_number == 1
    cancel = {"event_id": event_id, "idempotency_key": "x1"}
    assert (await running.request("cancel", cancel)).ok
    assert (await running.request("cancel", {**cancel, "id": str(uuid.uuid4())})).ok  # not "already cancelled"
    assert await running.count(event_id, "cancelled") == 1


async def test_a_key_reused_for_another_request_is_a_conflict(running):
    assert (await running.request("create", create("k"))).ok
    other = await running.request("create", create("k", intervals=[{"duration": "PT2H", "payload": 1.0}]))
    assert not other.ok and other.error.code == "conflict" and other.error.field == "idempotency_key"
    kv = await running.js.key_value(running.settings.events_bucket)
    assert len(await kv.keys()) == 1


async def test_refusals_are_remembered_and_a_restart_keeps_the_keys(running):
    unknown = await running.request("create", create("u", ven_ids=["ven-nobody"]))
    assert not unknown.ok and unknown.error.code == "unknown_ven"
    await running.register_ven("ven-nobody")
    # The same key is the same request: its answer stands, even though it would now succeed.
    assert (await running.request("create", create("u", ven_ids=["ven-nobody"]))).error.code == "unknown_ven"

    first = await running.request("create", create("survives"))
    for scheduler in list(running.replicas):
        await running.stop_replica(scheduler)
    await running.start_replica()
    again = await running.request("create", create("survives"))
    assert again.ok and again.event.event_id == first.event.event_id


async def test_a_bad_key_is_invalid(running):
    reply = await running.request("create", create("x" * 201))
    assert not reply.ok and reply.error.code == "invalid" and reply.error.field == "idempotency_key"
