"""Rule 7: signalType and units valid for the signalName (the 2.0b table)."""

import pytest
from pydantic import ValidationError

from adrstack.shared.signals import SignalUnits, signal_problem, units_still_valid

USD_KWH = SignalUnits(kind="currencyPerKWh", unit="USD")
KW = SignalUnits(kind="powerReal", unit="W", scale="k")


@pytest.mark.parametrize("name, type_, units", [
    ("SIMPLE", "level", None),
    ("ELECTRICITY_PRICE", "price", USD_KWH),
    ("ELECTRICITY_PRICE", "price", None),  # units are optional
    ("ELECTRICITY_PRICE", "priceMultiplier", None),
    ("DEMAND_CHARGE", "price", SignalUnits(kind="currencyPerKW", unit="EUR")),
    ("BID_PRICE", "price", SignalUnits(kind="currency", unit="GBP")),
    ("LOAD_DISPATCH", "setpoint", KW),
    ("LOAD_DISPATCH", "level", None),
    ("CHARGE_STATE", "delta", SignalUnits(kind="energyReal", unit="Wh", scale="k")),
    ("LOAD_CONTROL", "x-loadControlCapacity", None),
    ("x-CUSTOM", "setpoint", KW),  # a custom name takes any type and units
])
def test_valid_triples(name, type_, units):
    assert signal_problem(name, type_, units) is None


@pytest.mark.parametrize("name, type_, units, field", [
    ("SIMPLE", "price", None, "signalType"),
    ("SIMPLE", "level", USD_KWH, "units"),
    ("ELECTRICITY_PRICE", "setpoint", None, "signalType"),
    ("ELECTRICITY_PRICE", "price", KW, "units"),
    ("ELECTRICITY_PRICE", "priceMultiplier", USD_KWH, "units"),
    ("LOAD_DISPATCH", "setpoint", USD_KWH, "units"),
    ("PEAK", "level", None, "signalName"),
    ("x-", "level", None, "signalName"),
    ("x-CUSTOM", "loudness", None, "signalType"),
])
def test_invalid_triples_name_the_wrong_part(name, type_, units, field):
    problem = signal_problem(name, type_, units)
    assert problem is not None and problem[0] == field, problem


@pytest.mark.parametrize("given, field", [
    (dict(kind="currencyPerKWh", unit="usd"), "unit"),
    (dict(kind="currencyPerKWh", unit="BYN"), "unit"),  # newer than the 2.0b schema's list
    (dict(kind="powerReal", unit="Wh"), "unit"),
    (dict(kind="energyReal", unit="Wh", hertz=50), "hertz"),
    (dict(kind="powerReal", unit="W", voltage=0), "voltage"),
    (dict(kind="powerReal", unit="W", scale="kilo"), "scale"),
    (dict(kind="temperature", unit="C"), "kind"),
])
def test_units_are_checked_field_by_field(given, field):
    with pytest.raises(ValidationError) as info:
        SignalUnits(**given)
    assert info.value.errors()[0]["loc"] == (field,)


def test_real_power_has_power_attributes_with_defaults():
    assert KW.power_attributes == (50.0, 230.0, True)
    assert SignalUnits(kind="powerReal", unit="W", hertz=60, voltage=120, ac=False).power_attributes == (60, 120, False)


def test_a_modification_keeps_units_only_while_they_fit():
    assert units_still_valid("ELECTRICITY_PRICE", "priceRelative", USD_KWH) == USD_KWH
    assert units_still_valid("ELECTRICITY_PRICE", "priceMultiplier", USD_KWH) is None
    assert units_still_valid("SIMPLE", "level", USD_KWH) is None
