"""Events targeting groups and resources: the scheduler stores their targets as given (the api
resolved them); listed VENs are still checked against the registry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

HOUR = [{"duration": "PT1H", "payload": 2.0}]


def later(**delta) -> str:
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


async def test_groups_and_resources_are_stored(harness):
    await harness.register_ven("ven-1")
    await harness.start_replica()
    reply = await harness.request("create", {"event_id": "ev-g", "group_ids": ["north"], "resource_ids": ["m-1"],
                                             "intervals": HOUR, "start_at": later(hours=2)})
    assert reply.ok, reply.error
    stored = await harness.stored("ev-g")
    assert stored.targets.group_ids == ["north"] and stored.targets.resource_ids == ["m-1"]
    assert stored.targets.ven_ids == []
    # A VEN listed beside a group is still checked.
    reply = await harness.request("create", {"group_ids": ["north"], "ven_ids": ["ghost"], "intervals": HOUR})
    assert not reply.ok and reply.error.code == "unknown_ven"
    reply = await harness.request("modify", {"event_id": "ev-g", "ven_ids": ["ven-1"], "group_ids": []})
    assert reply.ok, reply.error
    stored = await harness.stored("ev-g")
    assert stored.targets.ven_ids == ["ven-1"] and stored.targets.group_ids == []
    assert stored.targets.resource_ids == ["m-1"]


async def test_market_contexts_are_targets(harness):
    await harness.start_replica()
    reply = await harness.request("create", {"event_id": "ev-mc", "market_contexts": ["http://u.example/peak"],
                                             "intervals": HOUR, "start_at": later(hours=2)})
    assert reply.ok, reply.error
    assert (await harness.stored("ev-mc")).targets.market_contexts == ["http://u.example/peak"]
    # Clearing the only target kind is refused.
    reply = await harness.request("modify", {"event_id": "ev-mc", "market_contexts": []})
    assert not reply.ok and reply.error.code == "invalid"
