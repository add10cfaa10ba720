import json
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from adrstack.shared.lifecycle import DEFAULT_NEAR_WINDOW, next_boundary, status_at
from adrstack.shared.messages import (
    CommandReply,
    CreateEventCommand,
    DrEvent,
    EventStatus,
    EventTransition,
    ReportData,
    VenRegistered,
    decode,
    derived_id,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def make_event(**kw) -> DrEvent:
    base = dict(
        event_id="e1",
        status="far",
        start_at=T0,
        intervals=[{"duration": "PT30M", "payload": 1}, {"duration": "PT30M", "payload": 2}],
        targets={"ven_ids": ["v1"]},
    )
    base.update(kw)
    return DrEvent.model_validate(base)


def test_every_message_carries_id_time_and_version_as_readable_json():
    msg = VenRegistered(ven_id="v1", ven_name="b1", registration_id="r1")
    data = json.loads(msg.to_bytes().decode("utf-8"))
    assert set(data) >= {"id", "occurred_at", "schema_version", "ven_id"}
    assert data["schema_version"] == 1
    assert data["occurred_at"].endswith("Z") or data["occurred_at"].endswith("+00:00")
    assert msg.msg_id == data["id"]
    assert decode(VenRegistered, msg.to_bytes()) == msg


def test_durations_travel_as_iso8601():
    ev = make_event()
    data = json.loads(ev.model_dump_json())
    assert data["intervals"][0]["duration"] == "PT30M"
    assert ev.end_at == T0 + timedelta(hours=1)


def test_negative_durations_are_refused():
    with pytest.raises(ValidationError):
        make_event(intervals=[{"duration": "-PT1H", "payload": 1}])


def test_a_zero_duration_is_an_open_ended_event_that_never_completes_by_the_clock():
    """Rule 47: duration 0 means open-ended, active from its start until cancelled."""
    ev = make_event(intervals=[{"duration": "PT0S", "payload": 2}], randomization="PT5M")
    assert ev.open_ended and ev.end_at is None
    assert status_at(ev, T0 - timedelta(minutes=1)) == EventStatus.NEAR
    assert status_at(ev, T0) == EventStatus.ACTIVE
    assert status_at(ev, T0 + timedelta(days=4000)) == EventStatus.ACTIVE
    assert next_boundary(ev, T0 - timedelta(minutes=1)) == T0
    assert next_boundary(ev, T0) is None  # nothing left for the scheduler's timer
    cancelled = ev.model_copy(update={"status": EventStatus.CANCELLED})
    assert status_at(cancelled, T0 + timedelta(hours=1)) == EventStatus.CANCELLED


def test_an_open_ended_interval_is_its_signals_only_one():
    with pytest.raises(ValidationError, match="single interval"):
        make_event(intervals=[{"duration": "PT1H", "payload": 1}, {"duration": "PT0S", "payload": 2}])
    with pytest.raises(ValidationError, match="single interval"):
        make_event(intervals=[{"duration": "PT0S", "payload": 1}],
                   extra_signals=[{"signal_name": "ELECTRICITY_PRICE", "signal_type": "price", "signal_id": "s2",
                                   "intervals": [{"duration": "PT0S", "payload": 1}, {"duration": "PT0S", "payload": 2}]}])
    with pytest.raises(ValidationError, match="covers the whole event"):
        make_event(intervals=[{"duration": "PT0S", "payload": 1}],
                   extra_signals=[{"signal_name": "ELECTRICITY_PRICE", "signal_type": "price", "signal_id": "s2",
                                   "intervals": [{"duration": "PT1H", "payload": 1}]}])


def test_naive_times_and_empty_intervals_are_refused():
    with pytest.raises(ValidationError) as info:
        CreateEventCommand(ven_ids=["v1"], intervals=[{"duration": "PT1H", "payload": 1}], start_at=datetime(2026, 1, 1))
    assert info.value.errors()[0]["loc"] == ("start_at",)
    with pytest.raises(ValidationError) as info:
        CreateEventCommand(ven_ids=["v1"], intervals=[])
    assert info.value.errors()[0]["loc"] == ("intervals",)


def test_ids_are_checked_where_they_become_subject_tokens():
    with pytest.raises(ValidationError):
        make_event(event_id="bad.id")
    with pytest.raises(ValidationError):
        CreateEventCommand(event_id="a>b", ven_ids=["v1"], intervals=[{"duration": "PT1H", "payload": 1}])
    with pytest.raises(ValidationError):
        VenRegistered(ven_id="v 1", ven_name="x", registration_id="r")


def test_transition_must_describe_its_own_event():
    with pytest.raises(ValidationError):
        EventTransition(event_id="other", transition="created", event=make_event())


def test_derived_ids_are_stable_and_distinct():
    assert derived_id("e1", 0, "active") == derived_id("e1", 0, "active")
    assert derived_id("e1", 0, "active") != derived_id("e1", 1, "active")


def test_reply_helpers():
    ok = CommandReply.success(make_event())
    assert ok.ok and ok.event.event_id == "e1" and ok.error is None
    bad = CommandReply.failure("unknown_ven", "no such VEN: x", "venIds")
    assert not bad.ok and bad.error.field == "venIds"


def test_report_data_requires_zoned_reading_times():
    with pytest.raises(ValidationError):
        ReportData(ven_id="v", report_specifier_id="rs", readings=[{"report_specifier_id": "rs", "r_id": "r", "at": "2026-01-01T00:00:00", "value": 1}])


def test_lifecycle_status_follows_the_clock():
    ev = make_event()
    assert status_at(ev, T0 - DEFAULT_NEAR_WINDOW - timedelta(seconds=1)) == EventStatus.FAR
    assert status_at(ev, T0 - timedelta(seconds=1)) == EventStatus.NEAR
    assert status_at(ev, T0) == EventStatus.ACTIVE
    assert status_at(ev, T0 + timedelta(hours=1)) == EventStatus.COMPLETED
    assert status_at(make_event(status="cancelled"), T0) == EventStatus.CANCELLED


def test_ramp_up_sets_the_near_window_and_boundaries_advance():
    ev = make_event(ramp_up="PT10M")
    assert status_at(ev, T0 - timedelta(minutes=9)) == EventStatus.NEAR
    assert status_at(ev, T0 - timedelta(minutes=11)) == EventStatus.FAR
    assert next_boundary(ev, T0 - timedelta(hours=1)) == T0 - timedelta(minutes=10)
    assert next_boundary(ev, T0 - timedelta(minutes=1)) == T0
    assert next_boundary(ev, T0) == T0 + timedelta(hours=1)
    assert next_boundary(ev, T0 + timedelta(hours=2)) is None
    assert next_boundary(make_event(status="completed"), T0) is None


def test_an_event_with_startafter_stays_active_until_every_ven_is_done():
    """Rule 66 (A_E3_0685): a VEN may start up to startafter late, so the event is kept (active)
    until dtstart + duration + startafter."""
    ev = make_event(randomization=timedelta(minutes=10))
    assert status_at(ev, T0 + timedelta(hours=1, minutes=5)) == EventStatus.ACTIVE
    assert status_at(ev, T0 + timedelta(hours=1, minutes=10)) == EventStatus.COMPLETED
    assert next_boundary(ev, T0) == T0 + timedelta(hours=1, minutes=10)
