"""An event with several signals (a SIMPLE level and a price) reaches an openleadr VEN with all of
them, each with its own currentValue while the event is active (rule 14)."""

from __future__ import annotations

from datetime import timedelta

from adrstack.shared.messages import EventInterval, EventStatus, SignalSpec, utcnow

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
