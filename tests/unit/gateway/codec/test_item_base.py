"""A signal's units go out as its itemBase, valid against the 2.0b schema and read back by
openleadr; the currency list is the schema's own."""

from datetime import timedelta
from pathlib import Path

from lxml import etree
from openleadr.messaging import parse_message

import adrstack.gateway.codec as codec
from adrstack.gateway.codec import render
from adrstack.gateway.events import render_checked
from adrstack.shared.messages import DrEvent, EventStatus, SignalSpec, utcnow
from adrstack.shared.signals import CURRENCIES, SignalUnits


def test_the_currency_list_is_the_schemas():
    xsd = Path(codec.__file__).parent / "xsd" / "oadr_ISO_ISO3AlphaCurrencyCode_20100407.xsd"
    values = etree.parse(str(xsd)).xpath("//xs:enumeration/@value", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})
    assert set(values) == CURRENCIES


def test_every_kind_of_units_renders_and_openleadr_reads_it():
    hour = [{"duration": "PT1H", "payload": 5}]
    kinds = {
        "s2": ("LOAD_DISPATCH", "setpoint", SignalUnits(kind="powerReal", unit="W", scale="k", voltage=1e20)),
        "s3": ("ENERGY_PRICE", "price", SignalUnits(kind="currencyPerThm", unit="EUR")),
        "s4": ("BID_ENERGY", "setpoint", SignalUnits(kind="energyReal", unit="Wh", scale="M")),
        "s6": ("BID_PRICE", "price", SignalUnits(kind="currency", unit="GBP", scale="m")),
        # Last: openleadr stops reading the units of the signals after one it does not know.
        "s5": ("DEMAND_CHARGE", "price", SignalUnits(kind="currencyPerKW", unit="JPY")),
    }
    event = DrEvent(event_id="e1", status="far", signal_name="ELECTRICITY_PRICE", signal_type="price",
                    units=SignalUnits(kind="currencyPerKWh", unit="USD"), start_at=utcnow(),
                    intervals=[{"duration": "PT1H", "payload": 0.25}], targets={"ven_ids": ["v1"]},
                    extra_signals=[SignalSpec(signal_name=n, signal_type=t, signal_id=i, units=u, intervals=hour)
                                   for i, (n, t, u) in kinds.items()])
    xml = render_checked(event, EventStatus.FAR, None)  # schema-validated, else UndeliverableEvent
    _, payload = parse_message(render.distribute_event("vtn", [xml.for_ven("v1")], request_id="r"))
    signals = {s["signal_id"]: s for s in payload["events"][0]["event_signals"]}
    seen = {i: s.get("measurement") for i, s in signals.items()}
    assert seen["signal-1"] == {"name": "currencyPerKWh", "description": "currencyPerKWh", "unit": "USD",
                                "scale": "none"}
    assert seen["s2"]["name"] == "powerReal" and seen["s2"]["unit"] == "W" and seen["s2"]["scale"] == "k"
    assert seen["s2"]["power_attributes"]["hertz"] == 50 and seen["s2"]["power_attributes"]["ac"] is True
    assert seen["s2"]["power_attributes"]["voltage"] == 10**20  # written as a decimal, not 1e+20
    assert seen["s3"] == {"name": "currencyPerThm", "description": "currency", "unit": "EUR", "scale": "none"}
    assert seen["s4"] == {"name": "energyReal", "description": "RealEnergy", "unit": "Wh", "scale": "M"}
    # openleadr misspells currencyPerKW in its table (currencyPerWK), so it reads it as a plain element.
    assert signals["s5"]["currency_per_kw"] == {"item_description": "currencyPerKW", "item_units": "JPY",
                                                "si_scale_code": "none"}
    assert seen["s6"]["name"] == "currency" and seen["s6"]["scale"] == "m"


def test_a_signal_without_units_has_no_item_base():
    event = DrEvent(event_id="e2", status="far", start_at=utcnow(), intervals=[{"duration": "PT1H", "payload": 1}],
                    targets={"ven_ids": ["v1"]})
    xml = render_checked(event, EventStatus.FAR, None)
    assert b"itemBase" not in render.distribute_event("vtn", [xml.for_ven("v1")])
    _, payload = parse_message(render.distribute_event("vtn", [xml.for_ven("v1")], request_id="r"))
    assert "measurement" not in payload["events"][0]["event_signals"][0]
    assert timedelta(hours=1) == payload["events"][0]["active_period"]["duration"]
