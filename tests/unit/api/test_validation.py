from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from adrstack.api.errors import ApiError, InvalidInput
from adrstack.api.scheduler_client import graphql_field
from adrstack.api.validation import IntervalSpec, cancel_command, create_command, modify_command

NOW = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


def create(**overrides):
    args = {"ven_ids": ["ven1"], "intervals": [IntervalSpec("PT1H", 2.0)], "now": NOW}
    args.update(overrides)
    return create_command(**args)


def test_defaults():
    cmd = create()
    assert cmd.ven_ids == ["ven1"]
    assert cmd.intervals[0].duration == timedelta(hours=1)
    assert cmd.intervals[0].payload == 2.0
    assert cmd.signal_name == "SIMPLE"
    assert cmd.signal_type == "level"
    assert cmd.start_at == NOW
    assert cmd.event_id is None


def test_keeps_given_values_and_dedupes_vens():
    start = datetime(2031, 5, 1, 8, tzinfo=timezone(timedelta(hours=2)))
    cmd = create(
        ven_ids=["a", "b", "a"], start_at=start, event_id="ev-1", priority=3,
        market_context="http://mc", response_required="never", ramp_up="PT10M",
    )
    assert cmd.ven_ids == ["a", "b"]
    assert cmd.start_at == start
    assert (cmd.event_id, cmd.priority, cmd.market_context, cmd.response_required) == ("ev-1", 3, "http://mc", "never")
    assert cmd.ramp_up == timedelta(minutes=10)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"ven_ids": []}, "venIds"),
        ({"ven_ids": ["ok", "bad.id"]}, "venIds[1]"),
        ({"intervals": []}, "intervals"),
        ({"intervals": [IntervalSpec("1 hour", 1)]}, "intervals[0].duration"),
        ({"intervals": [IntervalSpec("PT1H", 1), IntervalSpec("PT0S", 1)]}, "intervals[1].duration"),
        ({"intervals": [IntervalSpec("-PT1H", 1)]}, "intervals[0].duration"),
        ({"intervals": [IntervalSpec("PT1H", float("nan"))]}, "intervals[0].payload"),
        ({"start_at": datetime(2030, 1, 1, 12)}, "startAt"),
        ({"event_id": "has space"}, "eventId"),
        ({"event_id": "x" * 129}, "eventId"),
        ({"event_id": "a.b"}, "eventId"),
        ({"priority": -1}, "priority"),
        ({"response_required": "sometimes"}, "responseRequired"),
        ({"signal_name": " "}, "signalName"),
        ({"ramp_up": "soon"}, "rampUp"),
    ],
)
def test_invalid_input_names_its_field(overrides, field):
    with pytest.raises(InvalidInput) as info:
        create(**overrides)
    err = info.value
    assert err.field == field
    assert err.message.startswith(f"{field}: ")
    assert err.extensions == {"code": "INVALID", "field": field}
    assert err.http_status == 422


def test_modify_needs_a_change_and_checks_fields():
    with pytest.raises(InvalidInput, match="nothing to modify"):
        modify_command(event_id="e1")
    with pytest.raises(InvalidInput) as info:
        modify_command(event_id="e1", intervals=[IntervalSpec("PT1X", 1)])
    assert info.value.field == "intervals[0].duration"
    cmd = modify_command(event_id="e1", priority=2)
    assert (cmd.event_id, cmd.priority, cmd.intervals) == ("e1", 2, None)


def test_cancel_checks_event_id():
    assert cancel_command("e1").event_id == "e1"
    with pytest.raises(InvalidInput) as info:
        cancel_command("e 1")
    assert info.value.field == "eventId"


def test_scheduler_fields_are_renamed_for_graphql():
    assert graphql_field("ven_ids") == "venIds"
    assert graphql_field("ven_ids[2]") == "venIds[2]"
    assert graphql_field("intervals[0].duration") == "intervals[0].duration"
    assert graphql_field(None) is None
    err = ApiError("unknown_ven", "ven_ids: unknown VEN 'x'", "ven_ids").renamed("venIds")
    assert err.message == "venIds: unknown VEN 'x'"
    assert err.extensions == {"code": "UNKNOWN_VEN", "field": "venIds"}
    assert err.http_status == 404


def test_an_event_lists_at_most_the_contracts_number_of_vens():
    from adrstack.shared.messages import MAX_TARGETED_VENS

    many = [f"ven-{i}" for i in range(MAX_TARGETED_VENS)]
    assert len(create(ven_ids=many + many).ven_ids) == MAX_TARGETED_VENS  # repeats do not count
    with pytest.raises(InvalidInput) as e:
        create(ven_ids=many + ["one-too-many"])
    assert e.value.field == "venIds" and str(MAX_TARGETED_VENS) in e.value.message


@pytest.mark.parametrize("payload", [5, 4, -1, 2.5])
def test_a_simple_level_outside_0_to_3_is_refused_on_its_payload(payload):
    with pytest.raises(InvalidInput) as info:
        create(intervals=[IntervalSpec("PT1H", 1), IntervalSpec("PT1H", payload)])
    assert info.value.field == "intervals[1].payload" and "0, 1, 2 or 3" in info.value.message
    with pytest.raises(InvalidInput) as info:
        modify_command(event_id="e1", signal_name="SIMPLE", intervals=[IntervalSpec("PT1H", payload)])
    assert info.value.field == "intervals[0].payload"


def test_levels_0_to_3_and_other_signals_payloads_pass():
    assert [i.payload for i in create(intervals=[IntervalSpec("PT1H", p) for p in (0, 1, 2, 3)]).intervals] == [0, 1, 2, 3]
    assert create(signal_name="ELECTRICITY_PRICE", signal_type="price", intervals=[IntervalSpec("PT1H", 5)]).intervals[0].payload == 5
    # Which signal a modify's intervals belong to is the scheduler's to know.
    assert modify_command(event_id="e1", intervals=[IntervalSpec("PT1H", 5)]).intervals[0].payload == 5


def test_zero_notification_ramp_up_recovery_randomization_mean_none_and_are_accepted():
    cmd = create(notification="PT0S", ramp_up="PT0S", recovery="P0D", randomization="PT0S")
    assert (cmd.notification, cmd.ramp_up, cmd.recovery, cmd.randomization) == (timedelta(0),) * 4
    with pytest.raises(InvalidInput) as info:
        create(randomization="-PT1M")
    assert info.value.field == "randomization"


@dataclass
class Units:
    kind: str
    unit: str
    scale: str = "none"
    hertz: float | None = None
    voltage: float | None = None
    ac: bool = True


@dataclass
class Signal:
    intervals: list
    signal_name: str = "SIMPLE"
    signal_type: str = "level"
    units: Units | None = None


@pytest.mark.parametrize("overrides, field", [
    (dict(signal_type="price"), "signalType"),
    (dict(signal_name="PEAK"), "signalName"),
    (dict(signal_name="ELECTRICITY_PRICE", signal_type="price", units=Units("powerReal", "W")), "units"),
    (dict(signal_name="ELECTRICITY_PRICE", signal_type="price", units=Units("currencyPerKWh", "usd")), "units.unit"),
    (dict(signal_name="LOAD_DISPATCH", signal_type="setpoint", units=Units("powerReal", "W", scale="kilo")),
     "units.scale"),
    (dict(signals=[Signal([IntervalSpec("PT1H", 1)]),
                   Signal([IntervalSpec("PT1H", 1)], "LOAD_DISPATCH", "price")], intervals=None), "signals[1].signalType"),
    (dict(signals=[Signal([IntervalSpec("PT1H", 1)], "x-CUSTOM", "level", Units("energyReal", "W"))], intervals=None),
     "signals[0].units.unit"),
])
def test_rule_7_signal_type_and_units_must_fit_the_signal_name(overrides, field):
    with pytest.raises(InvalidInput) as info:
        create(**overrides)
    assert info.value.field == field


def test_units_reach_the_command():
    cmd = create(signal_name="LOAD_DISPATCH", signal_type="setpoint", intervals=[IntervalSpec("PT1H", 250)],
                 units=Units("powerReal", "W", scale="k", hertz=60, voltage=120))
    assert (cmd.units.kind, cmd.units.unit, cmd.units.scale, cmd.units.power_attributes) == \
        ("powerReal", "W", "k", (60, 120, True))
    modify = modify_command(event_id="e1", units=Units("currencyPerKWh", "EUR"))
    assert modify.units.unit == "EUR" and modify.signal_name is None
    with pytest.raises(InvalidInput) as info:
        modify_command(event_id="e1", signal_name="SIMPLE", signal_type="level", units=Units("currencyPerKWh", "EUR"))
    assert info.value.field == "units"


@dataclass
class BaselineSpec:
    start_at: datetime
    intervals: list
    baseline_id: str = "baseline-1"
    baseline_name: str = "baseline"
    resource_ids: list | None = None
    units: Units | None = None


def test_a_baseline_reaches_the_command_and_a_bad_one_names_its_field():
    """E1_1027: an event with a baseline (eiEventBaseline)."""
    base = BaselineSpec(NOW, [IntervalSpec("PT30M", 120), IntervalSpec("PT30M", 130)], resource_ids=["meter-1"],
                        units=Units("powerReal", "W", scale="k"))
    cmd = create(signal_name="ELECTRICITY_PRICE", signal_type="price", baseline=base)
    assert cmd.baseline.duration == timedelta(hours=1) and cmd.baseline.resource_ids == ["meter-1"]
    assert cmd.baseline.units.kind == "powerReal"
    for bad, field in [(BaselineSpec(NOW, [IntervalSpec("PT0S", 1)]), "baseline.intervals[0].duration"),
                       (BaselineSpec(datetime(2030, 1, 1), [IntervalSpec("PT1H", 1)]), "baseline.startAt"),
                       (BaselineSpec(NOW, []), "baseline.intervals"),
                       (BaselineSpec(NOW, [IntervalSpec("PT1H", 1)], units=Units("energyReal", "W")),
                        "baseline.units.unit")]:
        with pytest.raises(InvalidInput) as info:
            create(baseline=bad)
        assert info.value.field == field
    assert modify_command(event_id="e1", remove_baseline=True).remove_baseline
    with pytest.raises(InvalidInput) as info:
        modify_command(event_id="e1", baseline=base, remove_baseline=True)
    assert info.value.field == "removeBaseline"
