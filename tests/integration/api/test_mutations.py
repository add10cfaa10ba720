"""Mutations are scheduler commands over real NATS request/reply (a fake scheduler answers)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adrstack.shared.messages import CreateEventCommand, decode

from .helpers import FakeScheduler, gql

CREATE = """mutation($input: CreateEventInput!) {
  createEvent(input: $input) { eventId status modificationNumber signalName signalType startAt endAt
    intervals { duration payload } targets { venIds } responses { venId } } }"""


def intervals(*pairs):
    return [{"duration": d, "payload": p} for d, p in pairs]


async def test_create_event(client, scheduler):
    start = datetime.now(timezone.utc) + timedelta(hours=2)
    data = await gql(client, CREATE, {"input": {
        "venIds": ["ven-a", "ven-b"], "intervals": intervals(("PT1H", 2.0), ("PT30M", 1.0)),
        "startAt": start.isoformat(), "eventId": "ev-created", "priority": 2,
    }})
    assert "errors" not in data, data
    ev = data["data"]["createEvent"]
    assert ev["eventId"] == "ev-created"
    assert ev["status"] == "far"
    assert ev["modificationNumber"] == 0
    assert (ev["signalName"], ev["signalType"]) == ("SIMPLE", "level")
    assert ev["intervals"] == intervals(("PT1H", 2.0), ("PT30M", 1.0))
    assert ev["targets"] == {"venIds": ["ven-a", "ven-b"]}
    assert ev["responses"] == []
    assert datetime.fromisoformat(ev["startAt"]) == start
    assert datetime.fromisoformat(ev["endAt"]) == start + timedelta(minutes=90)
    (subject, payload), = scheduler.requests
    assert subject == scheduler.subjects.cmd_event("create")
    cmd = decode(CreateEventCommand, payload)
    assert cmd.event_id == "ev-created" and cmd.priority == 2 and cmd.ven_ids == ["ven-a", "ven-b"]


async def test_create_event_defaults_start_now(client, scheduler):
    before = datetime.now(timezone.utc)
    data = await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "intervals": intervals(("PT1H", 1))}})
    ev = data["data"]["createEvent"]
    assert ev["eventId"]
    assert before <= datetime.fromisoformat(ev["startAt"]) <= datetime.now(timezone.utc)
    assert ev["status"] == "active"


@pytest.mark.parametrize("change, field", [
    ({"venIds": []}, "venIds"),
    ({"venIds": ["ven-a", "bad id"]}, "venIds[1]"),
    ({"intervals": []}, "intervals"),
    ({"intervals": intervals(("1 hour", 1))}, "intervals[0].duration"),
    ({"intervals": intervals(("PT1H", 1), ("PT0S", 1))}, "intervals[1].duration"),
    ({"intervals": intervals(("-PT1H", 1))}, "intervals[0].duration"),
    ({"startAt": "2030-01-01T12:00:00"}, "startAt"),
    ({"eventId": "not/valid"}, "eventId"),
    ({"eventId": "x" * 129}, "eventId"),
    ({"intervals": intervals(("PT1H", 1), ("PT1H", 5))}, "intervals[1].payload"),
    ({"rampUp": "-PT5M"}, "rampUp"),
])
async def test_invalid_input_names_the_field_and_sends_nothing(client, scheduler, change, field):
    data = await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "intervals": intervals(("PT1H", 1)), **change}})
    assert data["data"] is None
    (error,) = data["errors"]
    assert error["message"].startswith(f"{field}: "), error
    assert error["extensions"] == {"code": "INVALID", "field": field}
    # A valid command right after is the first (and only) request the scheduler sees.
    ok = await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "intervals": intervals(("PT1H", 1))}})
    assert "errors" not in ok
    assert len(scheduler.requests) == 1


async def test_unknown_ven_from_the_scheduler_names_ven_ids(client, scheduler):
    data = await gql(client, CREATE, {"input": {"venIds": ["ven-a", "ven-unknown"], "intervals": intervals(("PT1H", 1))}})
    (error,) = data["errors"]
    assert error["extensions"] == {"code": "UNKNOWN_VEN", "field": "venIds"}
    assert "ven-unknown" in error["message"] and error["message"].startswith("venIds: ")
    assert len(scheduler.requests) == 1


async def test_existing_event_id_is_a_conflict(client, scheduler):
    variables = {"input": {"venIds": ["ven-a"], "intervals": intervals(("PT1H", 1)), "eventId": "dup"}}
    assert "errors" not in await gql(client, CREATE, variables)
    data = await gql(client, CREATE, variables)
    assert data["errors"][0]["extensions"] == {"code": "CONFLICT", "field": "eventId"}


async def test_scheduler_not_running(client):
    data = await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "intervals": intervals(("PT1H", 1))}})
    assert data["data"] is None
    (error,) = data["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE"
    assert "scheduler did not answer" in error["message"]


async def test_scheduler_hangs(app, client, nc, api_settings):
    app.state.api.scheduler._timeout = 0.3  # a hung scheduler should not cost 2 s here
    silent = await FakeScheduler(nc, api_settings.subjects, {"ven-a"}, silent=True).start()
    try:
        data = await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "intervals": intervals(("PT1H", 1))}})
    finally:
        await silent.stop()
    (error,) = data["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE"
    assert "scheduler did not answer" in error["message"] and "within" in error["message"]
    assert len(silent.requests) == 1


async def test_modify_and_cancel(client, scheduler):
    await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "intervals": intervals(("PT1H", 1)), "eventId": "ev-m"}})
    modified = await gql(client, """mutation($input: ModifyEventInput!) {
        modifyEvent(input: $input) { eventId modificationNumber intervals { duration payload } } }""",
        {"input": {"eventId": "ev-m", "intervals": intervals(("PT2H", 3))}})
    assert modified["data"]["modifyEvent"] == {
        "eventId": "ev-m", "modificationNumber": 1, "intervals": intervals(("PT2H", 3.0))}
    cancelled = await gql(client, """mutation { cancelEvent(eventId: "ev-m") { eventId status modificationNumber } }""")
    assert cancelled["data"]["cancelEvent"] == {"eventId": "ev-m", "status": "cancelled", "modificationNumber": 2}
    missing = await gql(client, """mutation { cancelEvent(eventId: "ev-none") { eventId } }""")
    assert missing["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "eventId"}
    assert [s.rsplit(".", 1)[1] for s, _ in scheduler.requests] == ["create", "modify", "cancel", "cancel"]


async def test_zero_durations_are_accepted_and_sent_as_zero(client, scheduler):
    data = await gql(client, CREATE, {"input": {
        "venIds": ["ven-a"], "intervals": intervals(("PT1H", 1)), "eventId": "ev-zero",
        "notification": "PT0S", "rampUp": "PT0S", "recovery": "PT0S", "randomization": "PT0S"}})
    assert "errors" not in data, data
    assert data["data"]["createEvent"]["eventId"] == "ev-zero"
    cmd = decode(CreateEventCommand, scheduler.requests[0][1])
    assert (cmd.notification, cmd.ramp_up, cmd.recovery, cmd.randomization) == (timedelta(0),) * 4


async def test_modify_to_a_simple_level_of_5_is_refused_and_sends_nothing(client, scheduler):
    data = await gql(client, """mutation($input: ModifyEventInput!) { modifyEvent(input: $input) { eventId } }""",
                     {"input": {"eventId": "ev-m", "signalName": "SIMPLE", "intervals": intervals(("PT1H", 5))}})
    (error,) = data["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": "intervals[0].payload"}
    assert scheduler.requests == []


async def test_an_open_ended_event_has_no_end(client, scheduler):
    """Rule 47: a single interval of PT0S is an open-ended event, active until cancelled."""
    data = await gql(client, CREATE, {"input": {
        "venIds": ["ven-a"], "intervals": intervals(("PT0S", 2)), "eventId": "ev-open"}})
    assert "errors" not in data, data
    assert data["data"]["createEvent"]["endAt"] is None
    assert data["data"]["createEvent"]["intervals"] == intervals(("PT0S", 2.0))
    cmd = decode(CreateEventCommand, scheduler.requests[0][1])
    assert [i.duration for i in cmd.intervals] == [timedelta(0)]


async def test_units_go_with_the_signal_and_a_misfit_names_its_field(client, scheduler):
    """Rule 7 through GraphQL: units fitting the signal reach the scheduler and come back; a signal
    type or units that do not fit the signal name are refused naming the field, and nothing is sent."""
    query = """mutation($input: CreateEventInput!) { createEvent(input: $input) {
      units { kind unit scale hertz voltage ac } signals { units { kind unit } } } }"""
    data = await gql(client, query, {"input": {
        "venIds": ["ven-a"], "intervals": intervals(("PT1H", 250)), "eventId": "ev-units",
        "signalName": "LOAD_DISPATCH", "signalType": "setpoint",
        "units": {"kind": "powerReal", "unit": "W", "scale": "k"}}})
    assert "errors" not in data, data
    assert data["data"]["createEvent"]["units"] == {"kind": "powerReal", "unit": "W", "scale": "k", "hertz": 50.0,
                                                    "voltage": 230.0, "ac": True}
    assert data["data"]["createEvent"]["signals"] == [{"units": {"kind": "powerReal", "unit": "W"}}]
    assert len(scheduler.requests) == 1

    for extra, field in [({"signalName": "SIMPLE", "signalType": "price"}, "signalType"),
                         ({"signalName": "ELECTRICITY_PRICE", "signalType": "price",
                           "units": {"kind": "currencyPerKWh", "unit": "DOLLARS"}}, "units.unit"),
                         ({"signalName": "ELECTRICITY_PRICE", "signalType": "price",
                           "units": {"kind": "powerReal", "unit": "W"}}, "units")]:
        data = await gql(client, query, {"input": {"venIds": ["ven-a"], "intervals": intervals(("PT1H", 1)), **extra}})
        (error,) = data["errors"]
        assert error["extensions"] == {"code": "INVALID", "field": field}, error
    assert len(scheduler.requests) == 1


async def test_an_event_with_a_baseline(client, scheduler):
    """E1_1027 through GraphQL: createEvent's baseline reaches the scheduler and comes back."""
    start = "2030-01-01T12:00:00+00:00"
    query = """mutation($input: CreateEventInput!) { createEvent(input: $input) {
      baseline { baselineId baselineName startAt intervals { duration payload } resourceIds units { kind unit scale } } } }"""
    data = await gql(client, query, {"input": {
        "venIds": ["ven-a"], "intervals": intervals(("PT1H", 0.4)), "eventId": "ev-baseline", "startAt": start,
        "signalName": "ELECTRICITY_PRICE", "signalType": "price",
        "baseline": {"startAt": start, "intervals": intervals(("PT30M", 120), ("PT30M", 130)),
                     "resourceIds": ["meter-1"], "units": {"kind": "powerReal", "unit": "W", "scale": "k"}}}})
    assert "errors" not in data, data
    assert data["data"]["createEvent"]["baseline"] == {
        "baselineId": "baseline-1", "baselineName": "baseline", "startAt": start,
        "intervals": intervals(("PT30M", 120.0), ("PT30M", 130.0)), "resourceIds": ["meter-1"],
        "units": {"kind": "powerReal", "unit": "W", "scale": "k"}}
    data = await gql(client, query, {"input": {
        "venIds": ["ven-a"], "intervals": intervals(("PT1H", 1)),
        "baseline": {"startAt": start, "intervals": intervals(("PT0S", 1))}}})
    assert data["errors"][0]["extensions"] == {"code": "INVALID", "field": "baseline.intervals[0].duration"}
    assert len(scheduler.requests) == 1
