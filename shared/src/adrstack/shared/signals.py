"""Event signals as 2.0b defines them (rule 7): which signalType goes with which signalName, and
the units (the signal's ``itemBase``) each pair takes. Checked where commands come in (the api
and the scheduler), not on stored events, so records written before the check still decode.

The table is the 2.0b profile's table of signal names, types and units. A custom name (``x-...``)
takes any signalType and any units. Units are optional: a VEN reads them when given.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

SIGNAL_TYPES: tuple[str, ...] = (
    "delta", "level", "multiplier", "price", "priceMultiplier", "priceRelative", "setpoint",
    "x-loadControlCapacity", "x-loadControlLevelOffset", "x-loadControlPercentOffset", "x-loadControlSetpoint",
)

UnitKind = Literal["currency", "currencyPerKWh", "currencyPerKW", "currencyPerThm", "powerReal", "energyReal"]
CURRENCY_KINDS = ("currency", "currencyPerKWh", "currencyPerKW", "currencyPerThm")

# signalName -> {signalType: the unit kind it takes, or None for none}
SIGNALS: dict[str, dict[str, str | None]] = {
    "SIMPLE": {"level": None},
    "simple": {"level": None},
    "ELECTRICITY_PRICE": {"price": "currencyPerKWh", "priceRelative": "currencyPerKWh", "priceMultiplier": None},
    "ENERGY_PRICE": {"price": "currencyPerThm", "priceRelative": "currencyPerThm", "priceMultiplier": None},
    "DEMAND_CHARGE": {"price": "currencyPerKW", "priceRelative": "currencyPerKW", "priceMultiplier": None},
    "BID_PRICE": {"price": "currency"},
    "BID_LOAD": {"setpoint": "powerReal"},
    "BID_ENERGY": {"setpoint": "energyReal"},
    "CHARGE_STATE": {"setpoint": "energyReal", "delta": "energyReal", "level": None, "multiplier": None},
    "LOAD_DISPATCH": {"setpoint": "powerReal", "delta": "powerReal", "multiplier": None, "level": None},
    "LOAD_CONTROL": {"x-loadControlCapacity": None, "x-loadControlLevelOffset": None,
                     "x-loadControlPercentOffset": None, "x-loadControlSetpoint": None},
}

SI_SCALES = ("p", "n", "micro", "m", "c", "d", "k", "M", "G", "T", "none")

# The 2.0b schema's ISO 4217 list (oadr_ISO_ISO3AlphaCurrencyCode_20100407.xsd; a unit test keeps
# the two equal). Codes newer than 2010 are not in it, so a VEN validating against it refuses them.
CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYR
BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EEK EGP ERN ETB EUR
FJD FKP GBP GEL GHS GIP GMD GNF GTQ GWP GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LTL LVL LYD MAD MDL MGA MKD MMK MNT MOP
MRO MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
RUB RWF SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD STD SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD USN USS UYI UYU UZS VEF VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XDR XFU XOF XPD XPF
XPT XTS XXX YER ZAR ZMK ZWL
""".split())

# The itemUnits each non-currency kind allows (fixed by the schema).
UNITS = {"powerReal": ("W", "J/s"), "energyReal": ("Wh",)}


class SignalUnits(BaseModel):
    """A signal's itemBase: e.g. ``currencyPerKWh`` in ``EUR``, or ``powerReal`` in ``W`` scale ``k``
    (with the power attributes the schema requires for real power). Part of the wire contracts
    (messages.py imports it from here)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    kind: UnitKind
    unit: str
    scale: Literal["p", "n", "micro", "m", "c", "d", "k", "M", "G", "T", "none"] = "none"
    hertz: float | None = Field(None, gt=0)
    voltage: float | None = Field(None, gt=0)
    ac: bool = True

    @field_validator("unit")
    @classmethod
    def _unit_fits_kind(cls, unit: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind in CURRENCY_KINDS:
            if unit not in CURRENCIES:
                raise ValueError(f"{unit!r} is not an ISO 4217 currency code of the 2.0b schema (e.g. USD, EUR)")
        elif kind in UNITS and unit not in UNITS[kind]:
            raise ValueError(f"{kind} is in {' or '.join(UNITS[kind])}, not {unit!r}")
        return unit

    @field_validator("hertz", "voltage")
    @classmethod
    def _power_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("kind") != "powerReal":
            raise ValueError("only powerReal units have hertz and voltage")
        return value

    @property
    def power_attributes(self) -> tuple[float, float, bool]:
        """(hertz, voltage, ac) of real power; 50 Hz, 230 V, AC unless given (as openleadr assumes)."""
        return (self.hertz or 50.0, self.voltage or 230.0, self.ac)


def signal_problem(signal_name: str, signal_type: str, units: SignalUnits | None) -> tuple[str, str] | None:
    """Rule 7: None when the triple is valid, else (which of signalName/signalType/units is wrong, why)."""
    if signal_type not in SIGNAL_TYPES:
        return "signalType", f"{signal_type!r} is not a 2.0b signalType ({', '.join(SIGNAL_TYPES)})"
    if signal_name.startswith("x-") and len(signal_name) > 2 and not signal_name[2].isspace():
        return None  # a custom signal: any type, any units
    types = SIGNALS.get(signal_name)
    if types is None:
        return "signalName", (f"{signal_name!r} is not a 2.0b signalName ({', '.join(n for n in SIGNALS if n != 'simple')}, "
                              "or a custom name starting with x-)")
    if signal_type not in types:
        return "signalType", f"{signal_name} signals are of type {' or '.join(types)}, not {signal_type}"
    kind = types[signal_type]
    if units is not None and kind is None:
        return "units", f"{signal_name} {signal_type} signals have no units"
    if units is not None and units.kind != kind:
        return "units", f"{signal_name} {signal_type} signals are in {kind}, not {units.kind}"
    return None


def units_still_valid(signal_name: str, signal_type: str, units: SignalUnits | None) -> SignalUnits | None:
    """The units kept when a modification changes the signal's name or type without giving units."""
    if units is None or signal_problem(signal_name, signal_type, units) is None:
        return units
    return None
