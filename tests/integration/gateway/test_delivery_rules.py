"""The 2.0b event-delivery rules, from the VEN side of the wire: real openleadr VENs against a
real Gateway, events written to the events bucket as the scheduler writes them."""

from __future__ import annotations

from datetime import timedelta

from adrstack.gateway.app import Gateway
from adrstack.gateway.delivery import MAX_CANCEL_SENDS
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


async def test_unacknowledged_cancellation_is_resent_until_the_ven_answers_it(gateway, bus, vens):
    """Rule 52 (a cancelled event with responseRequired=always is re-sent until acknowledged),
    rule 50 (each re-send still carries all the VEN's events), rule 48 (the answer names the
    current modificationNumber). The rules file names no case id for rule 52; the ported
    2.0a cancel cases (A_E3_04xx) exercise it."""
    client = await registered(vens, "unacked-ven", gateway.vtn_url)
    await put_event(bus, make_event("cancel-1", [client.ven_id]))
    await put_event(bus, make_event("other-1", [client.ven_id], start_at=utcnow().replace(microsecond=0)
                                    + timedelta(hours=5)))
    await eventually(lambda: _poll_for(client, lambda p: len(ids(p)) == 2), 10, message="two events")
    await put_event(bus, make_event("cancel-1", [client.ven_id], modification_number=1,
                                    status=EventStatus.CANCELLED))
    payload = await poll_until_events(client)
    # client.poll() is the bare wire call: it does not answer with oadrCreatedEvent.
    for _ in range(3):
        assert sorted(ids(payload)) == ["cancel-1", "other-1"]
        [cancel] = [e for e in payload["events"] if e["event_descriptor"]["event_id"] == "cancel-1"]
        assert cancel["event_descriptor"]["event_status"] == "cancelled"
        assert cancel["event_descriptor"]["modification_number"] == 1
        response_type, payload = await client.poll()
        assert response_type == "oadrDistributeEvent"
    await client.created_event(payload["request_id"], "cancel-1", "optIn", modification_number=1)
    assert (await client.poll())[0] == "oadrResponse"
    record = await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)
    assert record is not None and not record.get("awaiting") and set(record["pending"]) == {"other-1"}


async def test_cancellation_needing_no_answer_is_sent_once(gateway, bus, vens):
    """Rules 12/62 (A_E3_0468/0480/0498): the VTN does not require answers to responseRequired=never."""
    client = await registered(vens, "never-ven", gateway.vtn_url)
    await put_event(bus, make_event("never-1", [client.ven_id], response_required="never"))
    assert ids(await poll_until_events(client)) == ["never-1"]
    await put_event(bus, make_event("never-1", [client.ven_id], modification_number=1,
                                    status=EventStatus.CANCELLED, response_required="never"))
    payload = await poll_until_events(client)
    assert payload["events"][0]["event_descriptor"]["event_status"] == "cancelled"
    assert (await client.poll())[0] == "oadrResponse"


async def test_a_running_openleadr_ven_acknowledges_the_cancellation_and_it_stops(gateway, bus, vens):
    """Rule 52 end to end with openleadr's own poll loop: it answers the cancellation with
    oadrCreatedEvent, the acknowledgement is recorded in the delivery record, and the re-sending
    stops well before the retry limit would have stopped it."""
    seen = []
    cancellations = []  # every oadrDistributeEvent the VEN parsed that carried the cancellation
    polls = []

    async def on_event(event):
        seen.append((event["event_descriptor"]["event_id"], event["event_descriptor"]["event_status"]))
        return "optIn"

    def parsed(message_type, payload):
        if message_type == "oadrDistributeEvent" and any(
                e["event_descriptor"]["event_id"] == "auto-1" and e["event_descriptor"]["event_status"] == "cancelled"
                for e in payload.get("events") or []):
            cancellations.append(payload["request_id"])

    def sending(xml):
        if "oadrPoll" in xml:
            polls.append(1)

    client = vens("running-ven", gateway.vtn_url)
    client.add_handler("on_event", on_event)
    client.add_handler("on_update_event", on_event)
    client.add_hook("after_parse_xml", parsed)
    client.add_hook("before_send_xml", sending)
    await client.run()
    await put_event(bus, make_event("auto-1", [client.ven_id]))
    await eventually(lambda: ("auto-1", "far") in seen, 15, message="event received")
    await put_event(bus, make_event("auto-1", [client.ven_id], modification_number=1, status=EventStatus.CANCELLED))
    await eventually(lambda: ("auto-1", "cancelled") in seen, 15, message="cancellation received")

    async def acknowledged():
        record = await bus.kv_json(kv_keys.DELIVERY_PREFIX + client.ven_id)
        return record is not None and "awaiting" not in record and not record["pending"]

    await eventually(acknowledged, 15, message="acknowledgement recorded")
    # Three more polls by the VEN's own loop: none of them carries the cancellation again.
    sent = len(cancellations)
    polled = len(polls)
    await eventually(lambda: len(polls) >= polled + 3, 15, message="three more polls")
    assert len(cancellations) == sent
    assert sent < MAX_CANCEL_SENDS, "stopped by the retry limit, not by the acknowledgement"
    opts = await bus.stored(bus.subjects.opt(client.ven_id))
    assert any(o["event_id"] == "auto-1" and o["modification_number"] == 1 for o in opts)


async def test_acknowledgement_through_another_replica_stops_the_resends(gateway_settings, bus, vens):
    """Rule 52 with two replicas: the cancellation goes out through A, the VEN's oadrCreatedEvent
    reaches B; the record is shared (compare-and-set), so A stops re-sending."""
    a = Gateway(gateway_settings)
    b = Gateway(gateway_settings.model_copy(update={"vtn_port": 0}))
    await a.start()
    await b.start()
    try:
        via_a = await registered(vens, "two-replica-ven", a.vtn_url)
        via_b = vens("two-replica-ven", b.vtn_url, ven_id=via_a.ven_id)
        await put_event(bus, make_event("rep-1", [via_a.ven_id]))
        assert ids(await poll_until_events(via_a)) == ["rep-1"]
        await put_event(bus, make_event("rep-1", [via_a.ven_id], modification_number=1, status=EventStatus.CANCELLED))
        payload = await poll_until_events(via_a)
        assert payload["events"][0]["event_descriptor"]["event_status"] == "cancelled"
        await eventually(lambda: (e := b.events.get("rep-1")) is not None and e.modification_number == 1, 5,
                         message="replica B saw the cancellation")
        await via_b.created_event(payload["request_id"], "rep-1", "optIn", modification_number=1)
        assert (await via_a.poll())[0] == "oadrResponse"
        assert (await via_b.poll())[0] == "oadrResponse"
    finally:
        await a.stop()
        await b.stop()


async def test_an_open_ended_event_stays_active_and_distributed_until_cancelled(gateway, bus, vens):
    """Rule 47: duration 0 means open-ended. An event that started a day ago with activePeriod
    PT0S is still delivered as active, with its payload as currentValue; only a cancellation ends it.
    Rule 66 (A_E3_0685) beside it: an event whose end has passed but not its startafter is still
    active too."""
    client = await registered(vens, "open-ended-ven", gateway.vtn_url)
    now = utcnow().replace(microsecond=0)
    await put_event(bus, make_event("open-1", [client.ven_id], status=EventStatus.ACTIVE,
                                    start_at=now - timedelta(days=1),
                                    intervals=[EventInterval(duration=timedelta(0), payload=2)]))
    await put_event(bus, make_event("late-start-1", [client.ven_id], status=EventStatus.ACTIVE,
                                    start_at=now - timedelta(minutes=61),
                                    intervals=[EventInterval(duration=timedelta(hours=1), payload=1)],
                                    randomization=timedelta(minutes=10)))
    payload = await eventually(lambda: _poll_for(client, lambda p: len(ids(p)) == 2), 10, message="both events")
    by_id = {e["event_descriptor"]["event_id"]: e for e in payload["events"]}
    opened = by_id["open-1"]
    assert opened["event_descriptor"]["event_status"] == "active"
    assert opened["active_period"]["duration"] == timedelta(0)
    assert opened["event_signals"][0]["current_value"] == 2.0
    assert [i["duration"] for i in opened["event_signals"][0]["intervals"]] == [timedelta(0)]
    late = by_id["late-start-1"]
    assert late["event_descriptor"]["event_status"] == "active"
    assert late["active_period"]["tolerance"]["tolerate"]["startafter"] == timedelta(minutes=10)

    # A request for the VEN's events (E1_1050) still returns it: it is never completed by the clock.
    response_type, requested = await client.request_event()
    assert response_type == "oadrDistributeEvent" and "open-1" in ids(requested)

    await put_event(bus, make_event("open-1", [client.ven_id], status=EventStatus.CANCELLED, modification_number=1,
                                    start_at=now - timedelta(days=1), response_required="never",
                                    intervals=[EventInterval(duration=timedelta(0), payload=2)]))
    payload = await eventually(lambda: _poll_for(client, lambda p: "open-1" in ids(p)), 10, message="cancelled")
    [cancelled] = [e for e in payload["events"] if e["event_descriptor"]["event_id"] == "open-1"]
    assert cancelled["event_descriptor"]["event_status"] == "cancelled"
    assert cancelled["event_signals"][0]["current_value"] == 0.0
