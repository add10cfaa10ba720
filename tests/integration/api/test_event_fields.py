"""The Event type shows what createEvent accepts: the timing durations and testEvent, from the
stored event's snapshot (null when the event has none)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared.tables import DrEventRow

from .helpers import gql

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)


def row(event_id: str, snapshot: dict) -> DrEventRow:
    return DrEventRow(event_id=event_id, modification_number=0, status="far", signal_name="SIMPLE",
                      signal_type="level", start_at=T0, end_at=T0 + timedelta(hours=1),
                      intervals=[{"duration": "PT1H", "payload": 1}], targets={"ven_ids": ["ven-a"]},
                      market_context="http://m/ctx", response_required="always", created_at=T0,
                      modified_at=T0, snapshot=snapshot)


@pytest.fixture
async def events(engine):
    async with AsyncSession(engine) as s:
        s.add_all([row("ev-timed", {"notification": "PT2H", "ramp_up": "PT10M", "recovery": "PT0S",
                                    "randomization": "PT2M", "test_event": True}),
                   row("ev-plain", {})])
        await s.commit()


async def test_event_timing_fields(client, events):
    query = "query($e: String!) { event(eventId: $e) { notification rampUp recovery randomization testEvent } }"
    timed = (await gql(client, query, {"e": "ev-timed"}))["data"]["event"]
    assert timed == {"notification": "PT2H", "rampUp": "PT10M", "recovery": "PT0S", "randomization": "PT2M",
                     "testEvent": True}
    plain = (await gql(client, query, {"e": "ev-plain"}))["data"]["event"]
    assert plain == {"notification": None, "rampUp": None, "recovery": None, "randomization": None,
                     "testEvent": False}


async def test_every_signal_of_a_stored_event(client, engine):
    async with AsyncSession(engine) as s:
        s.add(row("ev-2sig", {"signal_id": "signal-1", "extra_signals": [
            {"signal_name": "ELECTRICITY_PRICE", "signal_type": "price", "signal_id": "signal-2",
             "intervals": [{"duration": "PT30M", "payload": 0.3}, {"duration": "PT30M", "payload": 0.4}]}]}))
        await s.commit()
    query = "{ event(eventId: \"ev-2sig\") { signals { signalId signalName signalType intervals { duration payload } } } }"
    signals = (await gql(client, query))["data"]["event"]["signals"]
    assert signals == [
        {"signalId": "signal-1", "signalName": "SIMPLE", "signalType": "level",
         "intervals": [{"duration": "PT1H", "payload": 1.0}]},
        {"signalId": "signal-2", "signalName": "ELECTRICITY_PRICE", "signalType": "price",
         "intervals": [{"duration": "PT30M", "payload": 0.3}, {"duration": "PT30M", "payload": 0.4}]}]


async def test_units_of_a_stored_event(client, engine):
    """Rule 7: the units (itemBase) each signal was created with, from the stored snapshot."""
    async with AsyncSession(engine) as s:
        s.add(row("ev-units", {"units": {"kind": "currencyPerKWh", "unit": "EUR", "scale": "none"},
                               "extra_signals": [{"signal_name": "SIMPLE", "signal_id": "signal-2",
                                                  "intervals": [{"duration": "PT1H", "payload": 1}]}]}))
        await s.commit()
    query = '{ event(eventId: "ev-units") { units { kind unit scale hertz } signals { signalId units { unit } } } }'
    event = (await gql(client, query))["data"]["event"]
    assert event == {"units": {"kind": "currencyPerKWh", "unit": "EUR", "scale": "none", "hertz": None},
                     "signals": [{"signalId": "signal-1", "units": {"unit": "EUR"}},
                                 {"signalId": "signal-2", "units": None}]}
