"""Events written to the events KV bucket (as the scheduler does) reach VENs on poll."""

from __future__ import annotations

from datetime import timedelta

from adrstack.gateway.app import Gateway
from adrstack.shared import kv_keys
from adrstack.shared.messages import DrEvent, EventInterval, EventStatus, EventTargets, utcnow
from tests.helpers import eventually


def make_event(event_id: str, ven_ids: list[str], **changes) -> DrEvent:
    now = utcnow().replace(microsecond=0)
    fields = dict(
        event_id=event_id,
        status=EventStatus.FAR,
        start_at=now + timedelta(hours=1),
        intervals=[EventInterval(duration=timedelta(minutes=30), payload=2),
                   EventInterval(duration=timedelta(minutes=15), payload=1)],
        targets=EventTargets(ven_ids=ven_ids),
        priority=3,
        market_context="http://market.example/ctx",
        vtn_comment="peak shaving",
        test_event=True,
        notification=timedelta(hours=2),
        ramp_up=timedelta(minutes=10),
        recovery=timedelta(minutes=5),
        randomization=timedelta(minutes=2),
    )
    fields.update(changes)
    return DrEvent(**fields)


async def put_event(bus, event: DrEvent) -> None:
    await bus.events.put(kv_keys.event_key(event.event_id), event.model_dump_json().encode())


async def registered(vens, name, url):
    client = vens(name, url)
    await client.create_party_registration()
    assert client.ven_id
    return client


async def poll_until_events(client, timeout=10.0) -> dict:
    async def probe():
        response_type, payload = await client.poll()
        return payload if response_type == "oadrDistributeEvent" else None

    return await eventually(probe, timeout, message="oadrDistributeEvent on poll")


async def test_event_is_delivered_with_every_field(gateway, bus, vens):
    """Every field of a stored event reaches the VEN; rule 4 (a new event goes out at
    modificationNumber 0), then a modification and the cancellation, each once."""
    client = await registered(vens, "evt-ven", gateway.vtn_url)
    bystander = await registered(vens, "not-targeted", gateway.vtn_url)
    event = make_event("evt-1", [client.ven_id, "ven-someoneelse1"])
    await put_event(bus, event)

    payload = await poll_until_events(client)
    [delivered] = payload["events"]
    d = delivered["event_descriptor"]
    assert d["event_id"] == "evt-1" and d["modification_number"] == 0
    assert d["priority"] == 3 and d["market_context"] == "http://market.example/ctx"
    assert d["event_status"] == "far" and d["test_event"] is True and d["vtn_comment"] == "peak shaving"
    assert d["created_date_time"] == event.created_at.replace(microsecond=d["created_date_time"].microsecond)
    period = delivered["active_period"]
    assert period["dtstart"] == event.start_at and period["duration"] == timedelta(minutes=45)
    # openleadr's parser names them ramp_up/notification/recovery (its templates *_period).
    assert period["ramp_up"] == timedelta(minutes=10)
    assert period["notification"] == timedelta(hours=2)
    assert period["recovery"] == timedelta(minutes=5)
    assert period["tolerance"]["tolerate"]["startafter"] == timedelta(minutes=2)
    [signal] = delivered["event_signals"]
    assert signal["signal_name"] == "SIMPLE" and signal["signal_type"] == "level"
    assert signal["signal_id"] == "signal-1"
    assert [(i["duration"], i["signal_payload"]) for i in signal["intervals"]] == [
        (timedelta(minutes=30), 2.0), (timedelta(minutes=15), 1.0)]
    assert delivered["targets"] == [{"ven_id": client.ven_id}]  # other VENs' ids are not disclosed
    assert delivered["response_required"] == "always"

    # Nothing changed: the next poll is empty; VENs not targeted never see it.
    assert (await client.poll())[0] == "oadrResponse"
    assert (await bystander.poll())[0] == "oadrResponse"

    # A modification is delivered again, then the cancellation once (responseRequired=never: no
    # answer awaited; for "always" see test_delivery_rules.py).
    await put_event(bus, make_event("evt-1", [client.ven_id], modification_number=1, priority=1))
    payload = await poll_until_events(client)
    assert payload["events"][0]["event_descriptor"]["modification_number"] == 1
    await put_event(bus, make_event("evt-1", [client.ven_id], modification_number=2, status=EventStatus.CANCELLED,
                                    response_required="never"))
    payload = await poll_until_events(client)
    assert payload["events"][0]["event_descriptor"]["event_status"] == "cancelled"
    assert (await client.poll())[0] == "oadrResponse"


async def test_completed_event_is_delivered_once_then_dropped(gateway, bus, vens):
    client = await registered(vens, "completing", gateway.vtn_url)
    start = utcnow().replace(microsecond=0) - timedelta(seconds=3)
    event = make_event("short-1", [client.ven_id], start_at=start, status=EventStatus.ACTIVE, randomization=None,
                       intervals=[EventInterval(duration=timedelta(seconds=10), payload=1)])
    await put_event(bus, event)
    payload = await poll_until_events(client)
    assert payload["events"][0]["event_descriptor"]["event_status"] == "active"
    # The clock alone moves it to completed: delivered once with that status...
    payload = await poll_until_events(client, timeout=15)
    assert payload["events"][0]["event_descriptor"]["event_status"] == "completed"
    # ...and then it is gone.
    assert (await client.poll())[0] == "oadrResponse"
    # oadrRequestEvent is always answered with oadrDistributeEvent (2.0b), here an empty one.
    response_type, payload = await client.request_event()
    assert response_type == "oadrDistributeEvent" and not payload.get("events"), payload
    assert payload["response"]["response_code"] == 200


async def test_request_event_returns_the_current_events(gateway, bus, vens):
    """E1_1050: oadrRequestEvent answers with every current event of the VEN."""
    client = await registered(vens, "syncing", gateway.vtn_url)
    await put_event(bus, make_event("sync-1", [client.ven_id]))
    await put_event(bus, make_event("sync-2", [client.ven_id], start_at=utcnow() - timedelta(minutes=1),
                                    status=EventStatus.ACTIVE, priority=1))

    async def both():
        response_type, payload = await client.request_event()
        return payload if response_type == "oadrDistributeEvent" and len(payload["events"]) == 2 else None

    payload = await eventually(both, 10, message="both events from oadrRequestEvent")
    # Active first.
    assert [e["event_descriptor"]["event_id"] for e in payload["events"]] == ["sync-2", "sync-1"]
    assert [e["event_descriptor"]["event_status"] for e in payload["events"]] == ["active", "far"]
    # What oadrRequestEvent delivered counts as delivered for polling too.
    assert (await client.poll())[0] == "oadrResponse"


async def test_opt_in_becomes_an_opt_response_fact(gateway, bus, vens):
    received = []

    async def on_event(event):
        received.append(event)
        return "optIn"

    client = vens("opting", gateway.vtn_url)
    client.add_handler("on_event", on_event)
    await client.run()
    await put_event(bus, make_event("opt-1", [client.ven_id], modification_number=4))
    fact = await eventually(lambda: bus.last(bus.subjects.opt(client.ven_id)), 15, message="OptResponse")
    assert fact["ven_id"] == client.ven_id and fact["event_id"] == "opt-1"
    assert fact["opt_type"] == "optIn" and fact["modification_number"] == 4
    assert received and received[0]["active_period"]["ramp_up"] == timedelta(minutes=10)


async def test_pending_event_survives_a_gateway_restart(gateway_settings, bus, vens):
    first = Gateway(gateway_settings)
    await first.start()
    try:
        client = await registered(vens, "restart-ven", first.vtn_url)
    finally:
        await first.stop()
    # Written while no gateway runs.
    await put_event(bus, make_event("pending-1", [client.ven_id]))
    second = Gateway(gateway_settings)
    await second.start()
    try:
        response_type, payload = await client.poll()
        assert response_type == "oadrDistributeEvent", response_type
        assert payload["events"][0]["event_descriptor"]["event_id"] == "pending-1"
    finally:
        await second.stop()
    # Delivery is remembered in KV across the restart: a third gateway does not resend.
    third = Gateway(gateway_settings)
    await third.start()
    try:
        assert (await client.poll())[0] == "oadrResponse"
    finally:
        await third.stop()


async def test_replicas_share_what_was_delivered(gateway_settings, bus, vens):
    a = Gateway(gateway_settings)
    b = Gateway(gateway_settings.model_copy(update={"vtn_port": 0}))
    await a.start()
    await b.start()
    try:
        via_a = await registered(vens, "replica-ven", a.vtn_url)
        via_b = vens("replica-ven", b.vtn_url, ven_id=via_a.ven_id)
        await put_event(bus, make_event("shared-1", [via_a.ven_id]))
        payload = await poll_until_events(via_b)
        assert payload["events"][0]["event_descriptor"]["event_id"] == "shared-1"
        await eventually(lambda: a.events.get("shared-1"), 5, message="replica A saw the event")
        assert (await via_a.poll())[0] == "oadrResponse"
    finally:
        await a.stop()
        await b.stop()
