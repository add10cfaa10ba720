"""A whole DR event in seconds, through the running stack, seen by a real openleadr VEN: created
with its timing (rampUp, randomization) and two signals, active with each signal's currentValue,
modified, completed on time — and every transition stored once, in order."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_spine import gql, recorder, rows, start_ven, ven_name
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

CREATE = """mutation($input: CreateEventInput!) { createEvent(input: $input) { eventId status } }"""
MODIFY = """mutation($input: ModifyEventInput!) { modifyEvent(input: $input) { modificationNumber } }"""
STATUS = """query($id: String!) { event(eventId: $id) { status modificationNumber rampUp randomization
  signals { signalName } currentResponses { venId optType } } }"""


async def test_an_event_runs_its_whole_life_in_seconds(stack):
    client, _ = await start_ven(stack, ven_name("life"))
    received = recorder(client)
    try:
        event_id = f"life-{random.randrange(10**9)}"
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=6)
        created = await gql(stack, CREATE, {"input": {
            "venIds": [client.ven_id], "eventId": event_id, "startAt": start.isoformat(),
            "rampUp": "PT2S", "randomization": "PT1S", "notification": "PT0S",
            "signals": [{"signalName": "SIMPLE", "intervals": [{"duration": "PT3S", "payload": 1},
                                                               {"duration": "PT3S", "payload": 3}]},
                        {"signalName": "ELECTRICITY_PRICE", "signalType": "price",
                         "intervals": [{"duration": "PT6S", "payload": 0.5}]}]}})
        assert "errors" not in created, created

        def delivered(status: str):
            return next((e for e in received if e["event_descriptor"]["event_id"] == event_id
                         and e["event_descriptor"]["event_status"] == status), None)

        first = await eventually(lambda: delivered("far") or delivered("near"), 20, message="event delivered")
        assert first["active_period"]["ramp_up"] == timedelta(seconds=2)
        assert first["active_period"]["tolerance"]["tolerate"]["startafter"] == timedelta(seconds=1)
        assert {s["signal_name"] for s in first["event_signals"]} == {"SIMPLE", "ELECTRICITY_PRICE"}
        assert all(s["current_value"] == 0 for s in first["event_signals"])  # not active yet

        active = await eventually(lambda: delivered("active"), 20, message="active delivered")
        values = {s["signal_name"]: s["current_value"] for s in active["event_signals"]}
        assert values["ELECTRICITY_PRICE"] == 0.5 and values["SIMPLE"] in (1.0, 3.0)

        modified = await gql(stack, MODIFY, {"input": {"eventId": event_id, "vtnComment": "extended comment"}})
        assert modified["data"]["modifyEvent"]["modificationNumber"] == 1

        async def completed():
            ev = (await gql(stack, STATUS, {"id": event_id}))["data"]["event"]
            return ev if ev and ev["status"] == "completed" else None
        ev = await eventually(completed, 30, message="completed in GraphQL")
        assert (ev["rampUp"], ev["randomization"]) == ("PT2S", "PT1S")
        assert [s["signalName"] for s in ev["signals"]] == ["SIMPLE", "ELECTRICITY_PRICE"]
        assert ev["currentResponses"] == [{"venId": client.ven_id, "optType": "optIn"}]

        def transitions():
            return [t for (t,) in rows(stack, "select transition from event_transitions where event_id = %s "
                                              "order by occurred_at", event_id)]
        stored = await eventually(lambda: "completed" in transitions() and transitions(), 20,
                                  message="transitions stored")
        assert stored[0] == "created" and stored[-1] == "completed"
        assert "active" in stored and "modified" in stored
        assert len(stored) == len(set(stored)), stored  # each transition once
    finally:
        await client.stop()
