"""An event with several signals (a SIMPLE level and a price) reaches an openleadr VEN with all of
them, each with its own currentValue while the event is active (rule 14)."""

from __future__ import annotations

from datetime import timedelta

from adrstack.shared.messages import EventInterval, EventStatus, EventTargets, SignalSpec, utcnow
from adrstack.shared.signals import SignalUnits
from tests.helpers import eventually

from .test_events import make_event, poll_until_events, put_event, registered


async def test_every_signal_is_delivered_with_its_current_value(gateway, bus, vens):
    client = await registered(vens, "two-signal-ven", gateway.vtn_url)
    start = utcnow().replace(microsecond=0) - timedelta(minutes=40)  # active, in the second half hour
    price = SignalSpec(signal_name="ELECTRICITY_PRICE", signal_type="price", signal_id="signal-2",
                       intervals=[EventInterval(duration=timedelta(minutes=30), payload=0.31),
                                  EventInterval(duration=timedelta(minutes=30), payload=0.42)])
    event = make_event("evt-2sig", [client.ven_id], status=EventStatus.ACTIVE, start_at=start,
                       intervals=[EventInterval(duration=timedelta(minutes=20), payload=1),
                                  EventInterval(duration=timedelta(minutes=40), payload=3)],
                       extra_signals=[price])
    await put_event(bus, event)

    payload = await poll_until_events(client)
    [delivered] = payload["events"]
    signals = {s["signal_id"]: s for s in delivered["event_signals"]}
    assert set(signals) == {"signal-1", "signal-2"}
    assert signals["signal-2"]["signal_name"] == "ELECTRICITY_PRICE" and signals["signal-2"]["signal_type"] == "price"
    assert [i["signal_payload"] for i in signals["signal-2"]["intervals"]] == [0.31, 0.42]
    # 40 minutes in: the level's second interval (from 20 min) and the price's second (from 30 min).
    assert signals["signal-1"]["current_value"] == 3.0
    assert signals["signal-2"]["current_value"] == 0.42


async def test_price_and_dispatch_events_carry_their_units_and_the_opt_in_is_recorded(gateway, bus, vens):
    """E1_1020 (a price event for two resources, opted in) and E1_1025 (a LOAD_DISPATCH setpoint),
    rule 7: each signal reaches the VEN with the units its name and type take, as its itemBase
    (openleadr reads it as the signal's measurement), the two resourceIDs in eiTarget, and the
    VEN's optIn to each event is recorded."""
    client = await registered(vens, "units-ven", gateway.vtn_url)
    answered: list[str] = []

    async def on_event(event):
        answered.append(event["event_descriptor"]["event_id"])
        return "optIn"

    client.add_handler("on_event", on_event)
    hour = [EventInterval(duration=timedelta(hours=1), payload=0.25)]
    await put_event(bus, make_event(
        "evt-price", [client.ven_id], signal_name="ELECTRICITY_PRICE", signal_type="price",
        units=SignalUnits(kind="currencyPerKWh", unit="USD"), intervals=hour,
        targets=EventTargets(ven_ids=[client.ven_id], resource_ids=["meter-a", "meter-b"])))
    await put_event(bus, make_event(
        "evt-dispatch", [client.ven_id], signal_name="LOAD_DISPATCH", signal_type="setpoint",
        units=SignalUnits(kind="powerReal", unit="W", scale="k", hertz=60, voltage=120),
        intervals=[EventInterval(duration=timedelta(hours=1), payload=250)]))

    payload = await poll_until_events(client)
    by_id = {e["event_descriptor"]["event_id"]: e for e in payload["events"]}
    price = by_id["evt-price"]
    assert price["event_signals"][0]["measurement"] == {
        "name": "currencyPerKWh", "description": "currencyPerKWh", "unit": "USD", "scale": "none"}
    assert {"resource_id": "meter-a"} in price["targets"] and {"resource_id": "meter-b"} in price["targets"]
    dispatch = by_id["evt-dispatch"]["event_signals"][0]
    assert (dispatch["signal_name"], dispatch["signal_type"]) == ("LOAD_DISPATCH", "setpoint")
    assert dispatch["measurement"]["name"] == "powerReal" and dispatch["measurement"]["scale"] == "k"
    assert dispatch["measurement"]["power_attributes"] == {"hertz": 60, "voltage": 120, "ac": True}

    await client._on_event(payload)  # what openleadr's poll loop does with a distribution

    async def both_opted_in():
        facts = await bus.stored(bus.subjects.opt(client.ven_id))
        return sorted((f["event_id"], f["opt_type"]) for f in facts) == [
            ("evt-dispatch", "optIn"), ("evt-price", "optIn")]

    await eventually(both_opted_in, 15, message="an optIn to each event")
    assert sorted(answered) == ["evt-dispatch", "evt-price"]
