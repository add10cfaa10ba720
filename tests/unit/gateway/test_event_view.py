"""The oadrEvent dicts we build render through openleadr's templates, pass the 2.0b schema and
keep every optional field (openleadr's add_event would drop them)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from openleadr.messaging import create_message, parse_message, validate_xml_schema

from adrstack.gateway.event_view import UndeliverableEvent, delivery_order, event_dict
from adrstack.shared.messages import DrEvent, EventInterval, EventStatus, EventTargets

START = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def event(**changes) -> DrEvent:
    fields = dict(
        event_id="e1", status=EventStatus.FAR, start_at=START,
        intervals=[EventInterval(duration=timedelta(minutes=30), payload=3),
                   EventInterval(duration=timedelta(minutes=30), payload=0)],
        targets=EventTargets(ven_ids=["ven-a", "ven-b"], group_ids=["g1"]),
        priority=2, market_context="http://mc", vtn_comment="hello", test_event=True,
        notification=timedelta(days=1), ramp_up=timedelta(minutes=15), recovery=timedelta(minutes=10),
        randomization=timedelta(minutes=3), modification_number=2,
        created_at=START - timedelta(days=2), modified_at=START - timedelta(days=1),
    )
    fields.update(changes)
    return DrEvent(**fields)


def round_trip(events: list[dict]) -> dict:
    xml = create_message("oadrDistributeEvent", request_id="r", vtn_id="vtn", events=events,
                         response={"response_code": 200, "response_description": "OK", "request_id": None})
    validate_xml_schema(xml.encode())
    message_type, payload = parse_message(xml)
    assert message_type == "oadrDistributeEvent"
    return payload


def test_every_field_survives_rendering_and_parsing():
    [parsed] = round_trip([event_dict(event(), EventStatus.NEAR, "ven-a")])["events"]
    d = parsed["event_descriptor"]
    assert (d["event_id"], d["modification_number"], d["priority"]) == ("e1", 2, 2)
    assert d["market_context"] == "http://mc" and d["event_status"] == "near"
    assert d["test_event"] is True and d["vtn_comment"] == "hello"
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
    assert [i["dtstart"] for i in signal["intervals"]] == [START, START + timedelta(minutes=30)]
    assert (signal["signal_name"], signal["signal_type"], signal["signal_id"]) == ("SIMPLE", "level", "signal-1")
    # Only the receiving VEN is named, group targets are kept.
    assert sorted(parsed["targets"], key=str) == [{"group_id": "g1"}, {"ven_id": "ven-a"}]
    assert parsed["response_required"] == "always"


def test_optional_fields_are_left_out_when_unset():
    minimal = event(notification=None, ramp_up=None, recovery=None, randomization=None, vtn_comment=None,
                    test_event=False, modification_number=0)
    built = event_dict(minimal, EventStatus.FAR, "ven-a")
    assert "modification_date_time" not in built["event_descriptor"]
    [parsed] = round_trip([built])["events"]
    assert not {"ramp_up", "notification", "recovery", "tolerance"} & set(parsed["active_period"])
    assert parsed["event_descriptor"]["test_event"] is False


def test_status_is_the_one_given_not_recomputed():
    [parsed] = round_trip([event_dict(event(), EventStatus.CANCELLED, "ven-a")])["events"]
    assert parsed["event_descriptor"]["event_status"] == "cancelled"


@pytest.mark.parametrize("bad", [
    dict(intervals=[EventInterval(duration=timedelta(minutes=1), payload=7)]),
    dict(intervals=[EventInterval(duration=timedelta(seconds=1.5), payload=1)]),
])
def test_events_openleadr_cannot_render_are_refused(bad):
    with pytest.raises(UndeliverableEvent):
        event_dict(event(**bad), EventStatus.FAR, "ven-a")


def test_non_simple_signals_may_carry_any_payload():
    built = event_dict(event(signal_name="ELECTRICITY_PRICE", signal_type="price",
                             intervals=[EventInterval(duration=timedelta(hours=1), payload=0.27)]),
                       EventStatus.FAR, "ven-a")
    [parsed] = round_trip([built])["events"]
    assert parsed["event_signals"][0]["intervals"][0]["signal_payload"] == 0.27


def test_delivery_order_active_first_by_priority_then_by_start():
    later = event(event_id="later", start_at=START + timedelta(hours=5))
    sooner = event(event_id="sooner", start_at=START + timedelta(hours=1))
    active_low = event(event_id="active-low", priority=0)
    active_high = event(event_id="active-high", priority=1)
    items = [(later, EventStatus.FAR), (active_low, EventStatus.ACTIVE), (sooner, EventStatus.NEAR),
             (active_high, EventStatus.ACTIVE)]
    assert [e.event_id for e, _ in delivery_order(items)] == ["active-high", "active-low", "sooner", "later"]
