"""Create / modify / cancel over real core-NATS request/reply against a running scheduler."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from nats.js.errors import KeyNotFoundError

from adrstack.shared import kv_keys

HOUR = [{"duration": "PT1H", "payload": 2.0}]


def later(**delta) -> str:
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


@pytest.fixture
async def running(harness):
    await harness.register_ven("ven-1")
    await harness.register_ven("ven-2")
    await harness.start_replica()
    return harness


async def test_create_stores_the_event_and_publishes_created(running):
    reply = await running.request(
        "create", {"event_id": "ev-1", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=2)}
    )
    assert reply.ok, reply.error
    assert reply.event.event_id == "ev-1" and reply.event.status.value == "far"
    stored = await running.stored("ev-1")
    assert stored.status.value == "far" and stored.targets.ven_ids == ["ven-1"]
    fact = await running.last_fact("ev-1", "created")
    assert fact.event == stored and fact.transition.value == "created"


async def test_create_generates_an_id_and_starts_now_by_default(running):
    reply = await running.request("create", {"ven_ids": ["ven-1"], "intervals": HOUR})
    assert reply.ok, reply.error
    event_id = reply.event.event_id
    assert event_id.startswith("evt-")
    assert abs((reply.event.start_at - datetime.now(timezone.utc)).total_seconds()) < 10
    # Already active when created: the active transition is announced right away.
    assert reply.event.status.value == "active"
    assert await running.count(event_id, "created") == 1
    assert await running.count(event_id, "active") == 1


async def test_unknown_ven_is_refused_and_nothing_stored(running):
    reply = await running.request("create", {"event_id": "ev-u", "ven_ids": ["ven-1", "ghost"], "intervals": HOUR})
    assert not reply.ok and reply.error.code == "unknown_ven" and reply.error.field == "ven_ids"
    assert "ghost" in reply.error.message
    with pytest.raises(KeyNotFoundError):
        await running.stored("ev-u")
    assert await running.count("ev-u", "created") == 0


async def test_every_unknown_ven_is_counted(running):
    ghosts = [f"ghost-{i}" for i in range(1200)]  # more than one slice of concurrent lookups
    reply = await running.request("create", {"ven_ids": ["ven-1", *ghosts], "intervals": HOUR})
    assert not reply.ok and reply.error.code == "unknown_ven"
    assert "ghost-0 (and 1199 more)" in reply.error.message


async def test_a_ven_registered_a_moment_ago_can_be_targeted(running, harness):
    assert (await running.request("create", {"ven_ids": ["ven-1"], "intervals": HOUR})).ok  # registry now mirrored
    await harness.register_ven("ven-brand-new")
    reply = await running.request("create", {"ven_ids": ["ven-brand-new"], "intervals": HOUR})
    assert reply.ok, reply.error


async def test_duplicate_event_id_is_a_conflict(running):
    body = {"event_id": "ev-dup", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=1)}
    assert (await running.request("create", body)).ok
    reply = await running.request("create", {**body, "intervals": [{"duration": "PT5M", "payload": 1}]})
    assert not reply.ok and reply.error.code == "conflict" and reply.error.field == "event_id"
    assert (await running.stored("ev-dup")).intervals[0].duration == timedelta(hours=1)
    assert await running.count("ev-dup", "created") == 1


@pytest.mark.parametrize(
    "body, field",
    [
        (b"{this is not json", None),
        ({"ven_ids": ["ven-1"], "intervals": []}, "intervals"),
        ({"ven_ids": ["ven-1"], "intervals": [{"duration": "often", "payload": 1}]}, "intervals[0].duration"),
        ({"ven_ids": ["ven-1"], "intervals": HOUR, "start_at": "2030-01-01T10:00:00"}, "start_at"),
        ({"ven_ids": [], "intervals": HOUR}, "ven_ids"),
    ],
)
async def test_invalid_requests_get_an_invalid_reply_naming_the_field(running, body, field):
    reply = await running.request("create", body)
    assert not reply.ok and reply.error.code == "invalid" and reply.error.field == field


async def test_modify_then_cancel(running):
    created = await running.request(
        "create", {"event_id": "ev-m", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=3)}
    )
    assert created.ok
    reply = await running.request(
        "modify", {"event_id": "ev-m", "intervals": [{"duration": "PT30M", "payload": 3.0}], "ven_ids": ["ven-2"]}
    )
    assert reply.ok, reply.error
    assert reply.event.modification_number == 1 and reply.event.intervals[0].payload == 3.0
    stored = await running.stored("ev-m")
    assert stored.modification_number == 1 and stored.targets.ven_ids == ["ven-2"]
    assert (await running.last_fact("ev-m", "modified")).event == stored

    cancelled = await running.request("cancel", {"event_id": "ev-m"})
    assert cancelled.ok and cancelled.event.status.value == "cancelled"
    assert cancelled.event.modification_number == 2
    assert (await running.stored("ev-m")).status.value == "cancelled"
    assert (await running.last_fact("ev-m", "cancelled")).event.modification_number == 2

    again = await running.request("cancel", {"event_id": "ev-m"})
    assert again.ok and again.event.modification_number == 2
    assert await running.count("ev-m", "cancelled") == 1

    refused = await running.request("modify", {"event_id": "ev-m", "priority": 1})
    assert not refused.ok and refused.error.code == "conflict"
    assert (await running.stored("ev-m")).modification_number == 2


async def test_modify_with_an_unknown_ven_or_event(running):
    assert (await running.request(
        "create", {"event_id": "ev-x", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=3)}
    )).ok
    reply = await running.request("modify", {"event_id": "ev-x", "ven_ids": ["nobody"]})
    assert reply.error.code == "unknown_ven"
    assert (await running.stored("ev-x")).modification_number == 0
    missing = await running.request("modify", {"event_id": "nope", "priority": 1})
    assert missing.error.code == "not_found"
    bad = await running.request("cancel", {"event_id": "bad.id"})
    assert bad.error.code == "invalid" and bad.error.field == "event_id"


async def test_unpublishable_create_leaves_nothing_behind(running):
    # Without the stream the created fact cannot be stored: the event must be taken back.
    await running.js.delete_stream(running.settings.stream_name)
    reply = await running.request("create", {"event_id": "ev-half", "ven_ids": ["ven-1"], "intervals": HOUR})
    assert not reply.ok and reply.error.code == "unavailable"
    kv = await running.js.key_value(running.settings.events_bucket)
    with pytest.raises(KeyNotFoundError):
        await kv.get(kv_keys.event_key("ev-half"))


@pytest.mark.parametrize("body", [
    {"event_id": "ev-far", "ven_ids": ["ven-1"], "intervals": [{"duration": "P99999999D", "payload": 1}]},
    {"event_id": "ev-far", "ven_ids": ["ven-1"], "intervals": [{"duration": "PT2H", "payload": 1}],
     "start_at": "9999-12-31T23:00:00Z"},
])
async def test_an_event_ending_beyond_the_calendar_is_invalid_and_not_stored(running, body):
    reply = await running.request("create", body)
    assert not reply.ok and reply.error.code == "invalid" and reply.error.field == "intervals", reply.error
    with pytest.raises(KeyNotFoundError):
        await running.stored("ev-far")


async def test_modify_to_end_beyond_the_calendar_is_invalid_and_changes_nothing(running):
    body = {"event_id": "ev-m", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=2)}
    assert (await running.request("create", body)).ok
    reply = await running.request("modify", {"event_id": "ev-m", "intervals": [{"duration": "P99999999D", "payload": 1}]})
    assert not reply.ok and reply.error.code == "invalid" and reply.error.field == "intervals", reply.error
    stored = await running.stored("ev-m")
    assert stored.modification_number == 0 and stored.intervals[0].duration == timedelta(hours=1)


async def test_a_simple_level_of_5_is_refused_and_nothing_stored(running):
    body = {"event_id": "ev-5", "ven_ids": ["ven-1"], "intervals": [{"duration": "PT1H", "payload": 5}]}
    reply = await running.request("create", body)
    assert not reply.ok and reply.error.code == "invalid" and reply.error.field == "intervals[0].payload"
    with pytest.raises(KeyNotFoundError):
        await running.stored("ev-5")
    assert await running.count("ev-5", "created") == 0
    assert (await running.request("create", {**body, "intervals": HOUR, "start_at": later(hours=2)})).ok
    refused = await running.request("modify", {"event_id": "ev-5", "intervals": [{"duration": "PT1H", "payload": 5}]})
    assert not refused.ok and refused.error.field == "intervals[0].payload"
    assert (await running.stored("ev-5")).modification_number == 0
    assert await running.count("ev-5", "modified") == 0


async def test_zero_durations_are_stored_as_zero(running):
    reply = await running.request("create", {
        "event_id": "ev-0", "ven_ids": ["ven-1"], "intervals": HOUR, "start_at": later(hours=2),
        "notification": "PT0S", "ramp_up": "PT0S", "recovery": "PT0S", "randomization": "PT0S"})
    assert reply.ok, reply.error
    stored = await running.stored("ev-0")
    assert (stored.notification, stored.ramp_up, stored.recovery, stored.randomization) == (timedelta(0),) * 4
    assert stored.status.value == "far"  # a zero ramp-up leaves the default near window


async def test_modify_takes_every_field_create_takes(running):
    created = await running.request("create", {"event_id": "ev-all", "ven_ids": ["ven-1"], "intervals": HOUR,
                                               "start_at": later(hours=3), "notification": "PT1H"})
    assert created.ok, created.error
    reply = await running.request("modify", {
        "event_id": "ev-all", "market_context": "http://market.example/summer", "response_required": "never",
        "test_event": True, "notification": "PT0S", "ramp_up": "PT10M", "recovery": "PT5M",
        "randomization": "PT1M", "priority": 2})
    assert reply.ok, reply.error
    stored = await running.stored("ev-all")
    assert (stored.market_context, stored.response_required, stored.test_event, stored.priority) == (
        "http://market.example/summer", "never", True, 2)
    assert (stored.notification, stored.ramp_up, stored.recovery, stored.randomization) == (
        timedelta(0), timedelta(minutes=10), timedelta(minutes=5), timedelta(minutes=1))
    assert stored.modification_number == 1
    bad = await running.request("modify", {"event_id": "ev-all", "response_required": "sometimes"})
    assert not bad.ok and bad.error.code == "invalid" and bad.error.field == "response_required"


async def test_an_event_carries_several_signals(running):
    price = {"signal_name": "ELECTRICITY_PRICE", "signal_type": "price",
             "intervals": [{"duration": "PT30M", "payload": 0.31}, {"duration": "PT30M", "payload": 0.42}]}
    reply = await running.request("create", {"event_id": "ev-sig", "ven_ids": ["ven-1"], "intervals": HOUR,
                                             "start_at": later(hours=2), "extra_signals": [price]})
    assert reply.ok, reply.error
    stored = await running.stored("ev-sig")
    assert [(s.signal_id, s.signal_name, len(s.intervals)) for s in stored.signals()] == [
        ("signal-1", "SIMPLE", 1), ("signal-2", "ELECTRICITY_PRICE", 2)]
    short = {**price, "intervals": [{"duration": "PT30M", "payload": 0.3}]}
    refused = await running.request("create", {"ven_ids": ["ven-1"], "intervals": HOUR, "extra_signals": [short]})
    assert not refused.ok and refused.error.code == "invalid" and "whole event" in refused.error.message
    simple5 = {"signal_name": "SIMPLE", "intervals": [{"duration": "PT1H", "payload": 5}]}
    refused = await running.request("create", {"ven_ids": ["ven-1"], "intervals": HOUR, "extra_signals": [simple5]})
    assert not refused.ok and refused.error.field == "extra_signals[0].intervals[0].payload"
    # A modify may replace the further signals; [] removes them.
    assert (await running.request("modify", {"event_id": "ev-sig", "extra_signals": []})).ok
    assert (await running.stored("ev-sig")).extra_signals == []
