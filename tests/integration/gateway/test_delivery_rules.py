"""The 2.0b event-delivery rules, from the VEN side of the wire: real openleadr VENs against a
real Gateway, events written to the events bucket as the scheduler writes them."""

from __future__ import annotations

from datetime import timedelta

from adrstack.shared import kv_keys
from adrstack.shared.messages import EventInterval, EventStatus, utcnow
from tests.helpers import eventually
from tests.integration.gateway.test_events import make_event, poll_until_events, put_event, registered


def ids(payload: dict) -> list[str]:
    return [e["event_descriptor"]["event_id"] for e in payload.get("events") or []]


async def test_retargeting_away_sends_the_whole_remaining_set_then_an_empty_distribution(gateway, bus, vens):
    """Rule 50 (A_E3_0440), E1_1030 (modify event), E1_1010 (empty oadrDistributeEvent): a
    modification that drops a VEN from an event's targets is an implied cancel, so the VEN is sent
    its remaining events (all of them), once; when its last event goes it gets an empty
    oadrDistributeEvent (schema-valid: openleadr validates every answer against the 2.0b XSD)."""
    a = await registered(vens, "retarget-a", gateway.vtn_url)
    b = await registered(vens, "retarget-b", gateway.vtn_url)
    await put_event(bus, make_event("keep-1", [a.ven_id]))
    await put_event(bus, make_event("move-1", [a.ven_id], start_at=utcnow().replace(microsecond=0)
                                    + timedelta(hours=3)))
    payload = await eventually(lambda: _poll_for(a, lambda p: sorted(ids(p)) == ["keep-1", "move-1"]), 10,
                               message="both events")
    assert (await a.poll())[0] == "oadrResponse"

    # move-1 now targets only B.
    await put_event(bus, make_event("move-1", [b.ven_id], modification_number=1,
                                    start_at=utcnow().replace(microsecond=0) + timedelta(hours=3)))
    payload = await poll_until_events(a)
    assert ids(payload) == ["keep-1"]
    assert payload["events"][0]["event_descriptor"]["modification_number"] == 0
    assert (await a.poll())[0] == "oadrResponse"  # exactly once per change
    payload = await poll_until_events(b)
    assert ids(payload) == ["move-1"]

    # keep-1 leaves A too: A is left with nothing, and is told so.
    await put_event(bus, make_event("keep-1", [b.ven_id], modification_number=1))
    payload = await poll_until_events(a)
    assert not payload.get("events"), payload
    assert payload["response"]["response_code"] == 200 and payload["request_id"]
    assert (await a.poll())[0] == "oadrResponse"
    # B holds both now: a distribution with the whole set, not just the newcomer.
    payload = await poll_until_events(b)
    assert sorted(ids(payload)) == ["keep-1", "move-1"]


async def test_event_removed_from_the_bucket_leaves_an_empty_distribution(gateway, bus, vens):
    """Rule 50, E1_1010: an event deleted from the bucket while the VEN holds it."""
    client = await registered(vens, "removed-ven", gateway.vtn_url)
    await put_event(bus, make_event("gone-1", [client.ven_id]))
    assert ids(await poll_until_events(client)) == ["gone-1"]
    await bus.events.delete(kv_keys.event_key("gone-1"))
    payload = await poll_until_events(client)
    assert not payload.get("events")
    assert (await client.poll())[0] == "oadrResponse"


async def _poll_for(client, accept):
    response_type, payload = await client.poll()
    return payload if response_type == "oadrDistributeEvent" and accept(payload) else None


async def test_current_value_is_the_running_intervals_payload_while_active_and_0_otherwise(gateway, bus, vens):
    """Rule 14: currentValue is 0 unless the event is active; while active it is the running
    interval's payload (openleadr parses it as event_signals[].current_value)."""
    client = await registered(vens, "current-ven", gateway.vtn_url)
    now = utcnow().replace(microsecond=0)
    # Active, in its second interval (payload 3); the first interval (payload 1) is over.
    await put_event(bus, make_event("running-1", [client.ven_id], status=EventStatus.ACTIVE, priority=1,
                                    start_at=now - timedelta(minutes=5),
                                    intervals=[EventInterval(duration=timedelta(minutes=2), payload=1),
                                               EventInterval(duration=timedelta(hours=1), payload=3),
                                               EventInterval(duration=timedelta(hours=1), payload=2)]))
    await put_event(bus, make_event("later-1", [client.ven_id], start_at=now + timedelta(hours=4)))
    payload = await eventually(lambda: _poll_for(client, lambda p: len(ids(p)) == 2), 10, message="two events")
    by_id = {e["event_descriptor"]["event_id"]: e for e in payload["events"]}
    assert by_id["running-1"]["event_descriptor"]["event_status"] == "active"
    assert by_id["running-1"]["event_signals"][0]["current_value"] == 3.0
    assert by_id["later-1"]["event_descriptor"]["event_status"] == "far"
    assert by_id["later-1"]["event_signals"][0]["current_value"] == 0.0

    # Cancelled: not active, so 0 again.
    await put_event(bus, make_event("running-1", [client.ven_id], status=EventStatus.CANCELLED,
                                    modification_number=1, start_at=now - timedelta(minutes=5),
                                    intervals=[EventInterval(duration=timedelta(minutes=2), payload=1),
                                               EventInterval(duration=timedelta(hours=1), payload=3)],
                                    response_required="never"))
    payload = await eventually(lambda: _poll_for(client, lambda p: "running-1" in ids(p)), 10,
                               message="the cancellation")
    [cancelled] = [e for e in payload["events"] if e["event_descriptor"]["event_id"] == "running-1"]
    assert cancelled["event_descriptor"]["event_status"] == "cancelled"
    assert cancelled["event_signals"][0]["current_value"] == 0.0
