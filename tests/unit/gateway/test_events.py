"""The gateway's view of events: what each VEN is shown, rendered once per state, checked against
the 2.0b schema and read back by openleadr (the oracle) with every optional field kept."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from openleadr.messaging import parse_message, validate_xml_schema

from adrstack.gateway.codec import render
from adrstack.gateway.events import (
    EventBook,
    UndeliverableEvent,
    current_interval,
    delivery_order,
    render_checked,
)
from adrstack.shared.messages import DrEvent, EventInterval, EventStatus, EventTargets

START = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def event(**changes) -> DrEvent:
    fields = dict(
        event_id="e1", status=EventStatus.FAR, start_at=START,
        intervals=[EventInterval(duration=timedelta(minutes=30), payload=3),
                   EventInterval(duration=timedelta(minutes=30), payload=0)],
        targets=EventTargets(ven_ids=["ven-a", "ven-b"], group_ids=["g1"]),
        priority=2, market_context="http://mc", vtn_comment="hello & <goodbye>", test_event=True,
        notification=timedelta(days=1), ramp_up=timedelta(minutes=15), recovery=timedelta(minutes=10),
        randomization=timedelta(minutes=3), modification_number=2,
        created_at=START - timedelta(days=2), modified_at=START - timedelta(days=1),
    )
    fields.update(changes)
    return DrEvent(**fields)


def shown_to(ven_id: str, *xmls) -> dict:
    body = render.distribute_event("VTN", [x.for_ven(ven_id) for x in xmls])
    validate_xml_schema(body)
    message_type, payload = parse_message(body)
    assert message_type == "oadrDistributeEvent"
    return payload


def test_every_field_survives_rendering_and_parsing():
    [parsed] = shown_to("ven-a", render_checked(event(), EventStatus.NEAR, None))["events"]
    d = parsed["event_descriptor"]
    assert (d["event_id"], d["modification_number"], d["priority"]) == ("e1", 2, 2)
    assert d["market_context"] == "http://mc" and d["event_status"] == "near"
    assert d["test_event"] is True and d["vtn_comment"] == "hello & <goodbye>"
    assert d["created_date_time"] == START - timedelta(days=2)
    assert d["modification_date_time"] == START - timedelta(days=1)
    p = parsed["active_period"]
    assert p["dtstart"] == START and p["duration"] == timedelta(hours=1)
    assert p["ramp_up"] == timedelta(minutes=15) and p["notification"] == timedelta(days=1)
    assert p["recovery"] == timedelta(minutes=10)
    assert p["tolerance"]["tolerate"]["startafter"] == timedelta(minutes=3)
    [signal] = parsed["event_signals"]
    assert [i["signal_payload"] for i in signal["intervals"]] == [3.0, 0.0]
    assert [i["uid"] for i in signal["intervals"]] == [0, 1]
    assert (signal["signal_name"], signal["signal_type"], signal["signal_id"]) == ("SIMPLE", "level", "signal-1")
    assert signal["current_value"] == 0.0  # not active
    # Only the receiving VEN is named; group targets are kept.
    assert sorted(parsed["targets"], key=str) == [{"group_id": "g1"}, {"ven_id": "ven-a"}]
    assert parsed["response_required"] == "always"


def test_one_rendering_serves_every_ven():
    xml = render_checked(event(), EventStatus.FAR, None)
    [a] = shown_to("ven-a", xml)["events"]
    [b] = shown_to("ven-b", xml)["events"]
    assert {"ven_id": "ven-a"} in a["targets"] and {"ven_id": "ven-b"} in b["targets"]
    assert {"ven_id": "ven-b"} not in a["targets"]


def test_current_value_is_the_running_intervals_payload_while_active():
    e = event()
    assert current_interval(e, EventStatus.FAR, START - timedelta(hours=1)) is None
    assert current_interval(e, EventStatus.ACTIVE, START + timedelta(minutes=10)) == 0
    assert current_interval(e, EventStatus.ACTIVE, START + timedelta(minutes=40)) == 1
    [first] = shown_to("ven-a", render_checked(e, EventStatus.ACTIVE, 0))["events"]
    [second] = shown_to("ven-a", render_checked(e, EventStatus.ACTIVE, 1))["events"]
    assert first["event_signals"][0]["current_value"] == 3.0
    assert second["event_signals"][0]["current_value"] == 0.0


def test_optional_fields_are_left_out_when_unset():
    minimal = event(notification=None, ramp_up=None, recovery=None, randomization=None, vtn_comment=None,
                    test_event=False, modification_number=0)
    [parsed] = shown_to("ven-a", render_checked(minimal, EventStatus.FAR, None))["events"]
    assert not {"ramp_up", "notification", "recovery", "tolerance"} & set(parsed["active_period"])
    assert "modification_date_time" not in parsed["event_descriptor"]
    assert parsed["event_descriptor"]["test_event"] is False


@pytest.mark.parametrize("bad", [
    dict(intervals=[EventInterval(duration=timedelta(minutes=1), payload=7)]),  # SIMPLE is 0..3
    dict(intervals=[EventInterval(duration=timedelta(seconds=1.5), payload=1)]),  # whole seconds only
    dict(vtn_comment="bell \x07 character"),  # not representable in XML 1.0
    dict(signal_type="loudness"),  # not a 2.0b signalType
])
def test_events_that_cannot_be_valid_oadrEvents_are_refused(bad):
    with pytest.raises(UndeliverableEvent):
        render_checked(event(**bad), EventStatus.FAR, None)


def test_non_simple_signals_may_carry_any_payload():
    priced = event(signal_name="ELECTRICITY_PRICE", signal_type="price",
                   intervals=[EventInterval(duration=timedelta(hours=1), payload=0.27)])
    [parsed] = shown_to("ven-a", render_checked(priced, EventStatus.FAR, None))["events"]
    assert parsed["event_signals"][0]["intervals"][0]["signal_payload"] == 0.27


def test_delivery_order_active_first_by_priority_then_by_start():
    later = event(event_id="later", start_at=START + timedelta(hours=5))
    sooner = event(event_id="sooner", start_at=START + timedelta(hours=1))
    active_low = event(event_id="active-low", priority=0)
    active_high = event(event_id="active-high", priority=1)
    items = [(later, EventStatus.FAR), (active_low, EventStatus.ACTIVE), (sooner, EventStatus.NEAR),
             (active_high, EventStatus.ACTIVE)]
    assert [e.event_id for e, _ in delivery_order(items)] == ["active-high", "active-low", "sooner", "later"]


def test_delivery_order_puts_completed_and_cancelled_events_last():
    """Rule 15: completed last, even when it started before the pending ones (cancelled with it)."""
    over = event(event_id="over", start_at=START - timedelta(hours=2))
    dropped = event(event_id="dropped", start_at=START - timedelta(hours=1))
    sooner = event(event_id="sooner", start_at=START + timedelta(hours=1))
    running = event(event_id="running", start_at=START - timedelta(hours=3))
    items = [(over, EventStatus.COMPLETED), (sooner, EventStatus.FAR), (dropped, EventStatus.CANCELLED),
             (running, EventStatus.ACTIVE)]
    assert [e.event_id for e, _ in delivery_order(items)] == ["running", "sooner", "over", "dropped"]


class _NoKv:
    _name = "test"


def test_book_indexes_by_ven_and_renders_once_per_state():
    book = EventBook(_NoKv())
    book.mirror.noted("e1", event(), 1)
    book.mirror.noted("e2", event(event_id="e2", targets=EventTargets(ven_ids=["ven-b"])), 2)
    assert [e.event_id for e in book.for_ven("ven-a")] == ["e1"]
    assert sorted(e.event_id for e in book.for_ven("ven-b")) == ["e1", "e2"]
    first = book.xml(book.get("e1"), EventStatus.FAR, START - timedelta(hours=2))
    assert book.xml(book.get("e1"), EventStatus.FAR, START - timedelta(hours=1)) is first
    assert book.xml(book.get("e1"), EventStatus.NEAR, START - timedelta(minutes=1)) is not first
    # Retargeting moves the event between VENs; a new modification renders anew.
    book.mirror.noted("e1", event(modification_number=3, targets=EventTargets(ven_ids=["ven-c"])), 3)
    assert book.for_ven("ven-a") == [] and [e.event_id for e in book.for_ven("ven-c")] == ["e1"]
    again = book.xml(book.get("e1"), EventStatus.FAR, START - timedelta(hours=2))
    assert again is not first and "<ei:modificationNumber>3<" in again.before_ven


def test_book_leaves_out_an_undeliverable_event():
    book = EventBook(_NoKv())
    book.mirror.noted("bad", event(event_id="bad", vtn_comment="\x01"), 1)
    assert book.xml(book.get("bad"), EventStatus.FAR, START) is None
