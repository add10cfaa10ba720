"""Command parsing and event building: what a request turns into, or which error reply."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from adrstack.scheduler.commands import (
    CommandRejected,
    apply_cancel,
    apply_modify,
    build_event,
    check_ven_ids,
    field_path,
    new_event_id,
    parse_command,
)
from adrstack.shared.messages import (
    CreateEventCommand,
    EventStatus,
    ModifyEventCommand,
)
from adrstack.shared.subjects import is_valid_token

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def create(**overrides) -> bytes:
    body = {"ven_ids": ["ven-1"], "intervals": [{"duration": "PT1H", "payload": 2.0}]}
    body.update(overrides)
    return json.dumps(body).encode()


def rejected(model, data: bytes) -> CommandRejected:
    with pytest.raises(CommandRejected) as info:
        parse_command(model, data)
    return info.value


def test_field_path_formats_pydantic_locations():
    assert field_path(("intervals", 0, "duration")) == "intervals[0].duration"
    assert field_path(("start_at",)) == "start_at"
    assert field_path(()) is None


def test_malformed_json_is_invalid_without_a_field():
    e = rejected(CreateEventCommand, b"{not json")
    reply = e.reply()
    assert reply.ok is False and reply.error.code == "invalid" and reply.error.field is None


def test_naive_start_time_is_invalid_on_start_at():
    e = rejected(CreateEventCommand, create(start_at="2030-01-01T12:00:00"))
    assert (e.code, e.field) == ("invalid", "start_at")


def test_empty_intervals_is_invalid_on_intervals():
    e = rejected(CreateEventCommand, create(intervals=[]))
    assert (e.code, e.field) == ("invalid", "intervals")


def test_bad_duration_names_the_interval_field():
    e = rejected(CreateEventCommand, create(intervals=[{"duration": "one hour", "payload": 1}]))
    assert e.field == "intervals[0].duration"


def test_bad_event_id_is_invalid_on_event_id():
    e = rejected(CreateEventCommand, create(event_id="has.dot"))
    assert e.field == "event_id"


def test_ven_ids_must_be_tokens():
    with pytest.raises(CommandRejected) as info:
        check_ven_ids(["ok", "not ok"])
    assert info.value.field == "ven_ids[1]"


def test_generated_event_ids_are_tokens_and_distinct():
    ids = {new_event_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_valid_token(i) and i.startswith("evt-") for i in ids)


@pytest.mark.parametrize(
    "start, status",
    [
        (NOW + timedelta(hours=2), EventStatus.FAR),
        (NOW + timedelta(minutes=1), EventStatus.NEAR),
        (NOW - timedelta(minutes=1), EventStatus.ACTIVE),
    ],
)
def test_created_event_gets_the_clock_status(start, status):
    cmd = parse_command(CreateEventCommand, create(start_at=start.isoformat()))
    event = build_event(cmd, "e1", NOW)
    assert event.status == status and event.modification_number == 0
    assert event.targets.ven_ids == ["ven-1"] and event.created_at == NOW


def test_start_defaults_to_now_and_is_active():
    event = build_event(parse_command(CreateEventCommand, create()), "e1", NOW)
    assert event.start_at == NOW and event.status == EventStatus.ACTIVE


def test_an_event_already_over_is_refused():
    cmd = parse_command(CreateEventCommand, create(start_at=(NOW - timedelta(hours=2)).isoformat()))
    with pytest.raises(CommandRejected) as info:
        build_event(cmd, "e1", NOW)
    assert info.value.field == "start_at"


def far_event():
    cmd = parse_command(CreateEventCommand, create(start_at=(NOW + timedelta(hours=2)).isoformat()))
    return build_event(cmd, "e1", NOW)


def test_modify_bumps_the_modification_number_and_recomputes_status():
    event = far_event()
    cmd = ModifyEventCommand(event_id="e1", start_at=NOW - timedelta(minutes=1), ven_ids=["ven-2"])
    later = NOW + timedelta(seconds=5)
    modified = apply_modify(event, cmd, later)
    assert modified.modification_number == 1
    assert modified.status == EventStatus.ACTIVE
    assert modified.targets.ven_ids == ["ven-2"] and modified.modified_at == later
    assert event.modification_number == 0  # the original is untouched


def test_modify_to_empty_intervals_is_invalid():
    with pytest.raises(CommandRejected) as info:
        apply_modify(far_event(), ModifyEventCommand(event_id="e1", intervals=[]), NOW)
    assert info.value.field == "intervals"


def test_terminal_events_cannot_be_modified_or_cancelled_again():
    cancelled = apply_cancel(far_event(), NOW)
    assert cancelled.status == EventStatus.CANCELLED and cancelled.modification_number == 1
    with pytest.raises(CommandRejected) as info:
        apply_modify(cancelled, ModifyEventCommand(event_id="e1", priority=2), NOW)
    assert info.value.code == "conflict"
    completed = far_event().model_copy(update={"status": EventStatus.COMPLETED})
    with pytest.raises(CommandRejected):
        apply_cancel(completed, NOW)


@pytest.mark.parametrize("payload", [5, 4, -1, 1.5])
def test_a_simple_level_outside_0_to_3_is_refused_on_its_payload(payload):
    cmd = parse_command(CreateEventCommand, create(intervals=[
        {"duration": "PT1H", "payload": 1}, {"duration": "PT1H", "payload": payload}]))
    with pytest.raises(CommandRejected) as info:
        build_event(cmd, "e1", NOW)
    assert info.value.code == "invalid" and info.value.field == "intervals[1].payload"
    assert "0, 1, 2 or 3" in info.value.message


def test_other_signals_keep_any_payload_and_levels_0_to_3_pass():
    price = parse_command(CreateEventCommand, create(
        signal_name="ELECTRICITY_PRICE", signal_type="price", intervals=[{"duration": "PT1H", "payload": 5}]))
    assert build_event(price, "e1", NOW).intervals[0].payload == 5
    levels = [{"duration": "PT1H", "payload": p} for p in (0, 1, 2, 3)]
    assert len(build_event(parse_command(CreateEventCommand, create(intervals=levels)), "e1", NOW).intervals) == 4


def test_modify_to_a_simple_level_of_5_or_to_simple_over_a_price_of_5_is_refused():
    with pytest.raises(CommandRejected) as info:
        apply_modify(far_event(), ModifyEventCommand(
            event_id="e1", intervals=[{"duration": "PT1H", "payload": 5}]), NOW)
    assert info.value.field == "intervals[0].payload"
    price = build_event(parse_command(CreateEventCommand, create(
        signal_name="ELECTRICITY_PRICE", signal_type="price", intervals=[{"duration": "PT1H", "payload": 5}])), "e1", NOW)
    with pytest.raises(CommandRejected) as info:
        apply_modify(price, ModifyEventCommand(event_id="e1", signal_name="SIMPLE", signal_type="level"), NOW)
    assert info.value.field == "intervals[0].payload"


@pytest.mark.parametrize("fields, field", [
    (dict(signal_name="SIMPLE", signal_type="price"), "signal_type"),
    (dict(signal_name="PEAK", signal_type="level"), "signal_name"),
    (dict(signal_name="ELECTRICITY_PRICE", signal_type="price", units={"kind": "powerReal", "unit": "W"}), "units"),
    (dict(extra_signals=[{"signal_name": "LOAD_DISPATCH", "signal_type": "price",
                          "intervals": [{"duration": "PT1H", "payload": 1}]}]), "extra_signals[0].signal_type"),
])
def test_rule_7_a_signal_type_or_units_that_do_not_fit_the_signal_name_are_refused(fields, field):
    cmd = parse_command(CreateEventCommand, create(intervals=[{"duration": "PT1H", "payload": 1}], **fields))
    with pytest.raises(CommandRejected) as info:
        build_event(cmd, "e1", NOW)
    assert info.value.code == "invalid" and info.value.field == field


def test_units_are_kept_by_a_modification_while_they_fit():
    price = build_event(parse_command(CreateEventCommand, create(
        signal_name="ELECTRICITY_PRICE", signal_type="price", units={"kind": "currencyPerKWh", "unit": "EUR"},
        intervals=[{"duration": "PT1H", "payload": 0.3}])), "e1", NOW)
    assert price.units.unit == "EUR"
    relative = apply_modify(price, ModifyEventCommand(event_id="e1", signal_type="priceRelative"), NOW)
    assert relative.units == price.units
    multiplier = apply_modify(price, ModifyEventCommand(event_id="e1", signal_type="priceMultiplier"), NOW)
    assert multiplier.units is None
    dollars = apply_modify(price, ModifyEventCommand(event_id="e1", units={"kind": "currencyPerKWh", "unit": "USD"}), NOW)
    assert dollars.units.unit == "USD" and dollars.modification_number == 1
    with pytest.raises(CommandRejected) as info:
        apply_modify(price, ModifyEventCommand(event_id="e1", units={"kind": "energyReal", "unit": "Wh"}), NOW)
    assert info.value.field == "units"


def test_zero_durations_mean_none_and_are_kept_negative_ones_refused():
    cmd = parse_command(CreateEventCommand, create(
        notification="PT0S", ramp_up="PT0S", recovery="PT0S", randomization="PT0S"))
    event = build_event(cmd, "e1", NOW)
    assert (event.notification, event.ramp_up, event.recovery, event.randomization) == (timedelta(0),) * 4
    with pytest.raises(CommandRejected) as info:
        build_event(parse_command(CreateEventCommand, create(recovery="-PT5M")), "e1", NOW)
    assert info.value.field == "recovery"


def test_a_baseline_is_kept_replaced_or_removed():
    """E1_1027: the event's eiEventBaseline through create and modify."""
    baseline = {"start_at": NOW.isoformat(), "intervals": [{"duration": "PT1H", "payload": 120}],
                "resource_ids": ["meter-1"]}
    event = build_event(parse_command(CreateEventCommand, create(baseline=baseline)), "e1", NOW)
    assert event.baseline.intervals[0].payload == 120 and event.baseline.resource_ids == ["meter-1"]
    kept = apply_modify(event, ModifyEventCommand(event_id="e1", priority=2), NOW)
    assert kept.baseline == event.baseline
    replaced = apply_modify(event, ModifyEventCommand(event_id="e1", baseline={
        "start_at": NOW.isoformat(), "intervals": [{"duration": "PT1H", "payload": 90}]}), NOW)
    assert replaced.baseline.intervals[0].payload == 90 and replaced.modification_number == 1
    removed = apply_modify(event, ModifyEventCommand(event_id="e1", remove_baseline=True), NOW)
    assert removed.baseline is None
    with pytest.raises(CommandRejected) as info:
        build_event(parse_command(CreateEventCommand, create(baseline={**baseline, "intervals": [
            {"duration": "PT0S", "payload": 1}]})), "e2", NOW)
    assert info.value.field.startswith("baseline")
