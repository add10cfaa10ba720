"""Programs over GraphQL: the programs KV bucket written with compare-and-set, schedule edits,
enrollment, upcoming occurrences (the scheduler's expansion), refusals naming the field, roles."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adrstack.shared import kv_keys
from adrstack.shared.programs import ProgramRecord

from .helpers import gql

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)

PROGRAM = """programId name marketContext venIds groupIds signalName level priority responseRequired notification
  schedule { timeZone rules { days start end } exclusionDates } updatedAt"""
CREATE = f"""mutation($input: CreateProgramInput!) {{ createProgram(input: $input) {{ {PROGRAM} }} }}"""
UPDATE = f"""mutation($input: UpdateProgramInput!) {{ updateProgram(input: $input) {{ {PROGRAM} }} }}"""
ENROLL = f"""mutation($id: String!, $vens: [String!], $groups: [String!]) {{
  enrollInProgram(programId: $id, venIds: $vens, groupIds: $groups) {{ {PROGRAM} }} }}"""
UNENROLL = f"""mutation($id: String!, $vens: [String!], $groups: [String!]) {{
  unenrollFromProgram(programId: $id, venIds: $vens, groupIds: $groups) {{ {PROGRAM} }} }}"""
DELETE = """mutation($id: String!) { deleteProgram(programId: $id) { programId } }"""
PROGRAMS = f"""query {{ programs {{ {PROGRAM} }} }}"""
UPCOMING = """query($id: String!, $limit: Int!) { program(programId: $id) {
  upcoming(limit: $limit) { eventId date startAt endAt } } }"""

WEEKDAY_EVENINGS = {"timeZone": "Europe/Paris", "rules": [
    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "17:00", "end": "20:00"}], "exclusionDates": ["2030-03-04"]}


def new_program(**kw) -> dict:
    return {"programId": "peak", "name": "Peak saver", "marketContext": "http://utility.example/peak",
            "venIds": ["ven-a"], "level": 2, "notification": "PT2H", "schedule": WEEKDAY_EVENINGS, **kw}


def error(data: dict) -> tuple[str, str | None]:
    [e] = data["errors"]
    return e["extensions"]["code"], e["extensions"]["field"]


async def stored(nc, api_settings, program_id: str) -> ProgramRecord | None:
    kv = await nc.jetstream().key_value(api_settings.programs_bucket)
    try:
        entry = await kv.get(kv_keys.program_key(program_id))
    except Exception:
        return None
    return ProgramRecord.model_validate_json(entry.value) if entry.value else None


async def test_program_lifecycle(client, known, nc, api_settings):
    data = await gql(client, CREATE, {"input": new_program()})
    assert "errors" not in data, data
    p = data["data"]["createProgram"]
    assert (p["programId"], p["marketContext"], p["venIds"], p["level"], p["notification"]) == (
        "peak", "http://utility.example/peak", ["ven-a"], 2, "PT2H")
    assert p["schedule"] == {"timeZone": "Europe/Paris", "exclusionDates": ["2030-03-04"],
                             "rules": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "17:00:00",
                                        "end": "20:00:00"}]}
    record = await stored(nc, api_settings, "peak")
    assert record.schedule.time_zone == "Europe/Paris" and record.ven_ids == ["ven-a"]

    data = await gql(client, ENROLL, {"id": "peak", "vens": ["ven-b", "ven-a"], "groups": ["north"]})
    assert data["data"]["enrollInProgram"]["venIds"] == ["ven-a", "ven-b"]
    assert data["data"]["enrollInProgram"]["groupIds"] == ["north"]
    data = await gql(client, UNENROLL, {"id": "peak", "vens": ["ven-a"]})
    assert data["data"]["unenrollFromProgram"]["venIds"] == ["ven-b"]

    schedule = {"timeZone": "Europe/Paris", "rules": [{"days": ["sat"], "start": "09:30", "end": "11:00"}]}
    data = await gql(client, UPDATE, {"input": {"programId": "peak", "schedule": schedule, "level": 3}})
    assert "errors" not in data, data
    assert data["data"]["updateProgram"]["schedule"]["rules"] == [{"days": ["sat"], "start": "09:30:00",
                                                                   "end": "11:00:00"}]
    record = await stored(nc, api_settings, "peak")
    assert record.level == 3 and record.schedule.rules[0].days == ["sat"] and record.name == "Peak saver"

    assert [p["programId"] for p in (await gql(client, PROGRAMS))["data"]["programs"]] == ["peak"]
    assert (await gql(client, DELETE, {"id": "peak"}))["data"]["deleteProgram"]["programId"] == "peak"
    assert await stored(nc, api_settings, "peak") is None
    assert (await gql(client, DELETE, {"id": "peak"}))["data"]["deleteProgram"] is None


async def test_upcoming_occurrences(client, app, known):
    await gql(client, CREATE, {"input": new_program()})
    # A fixed clock: Friday 2030-03-01 12:00Z; Monday 03-04 is excluded.
    app.state.api.programs.clock = lambda: T0
    data = await gql(client, UPCOMING, {"id": "peak", "limit": 3})
    assert "errors" not in data, data
    assert data["data"]["program"]["upcoming"] == [
        {"eventId": "prg-peak-20300301", "date": "2030-03-01", "startAt": "2030-03-01T16:00:00+00:00",
         "endAt": "2030-03-01T19:00:00+00:00"},
        {"eventId": "prg-peak-20300305", "date": "2030-03-05", "startAt": "2030-03-05T16:00:00+00:00",
         "endAt": "2030-03-05T19:00:00+00:00"},
        {"eventId": "prg-peak-20300306", "date": "2030-03-06", "startAt": "2030-03-06T16:00:00+00:00",
         "endAt": "2030-03-06T19:00:00+00:00"},
    ]
    # Across the spring change (2030-03-31): 17:00 Paris is 15:00Z from then on.
    app.state.api.programs.clock = lambda: datetime(2030, 3, 29, 20, tzinfo=timezone.utc)
    data = await gql(client, UPCOMING, {"id": "peak", "limit": 1})
    assert data["data"]["program"]["upcoming"][0]["startAt"] == "2030-04-01T15:00:00+00:00"
    assert error(await gql(client, UPCOMING, {"id": "peak", "limit": 0})) == ("INVALID", "limit")


@pytest.mark.parametrize("change, expected", [
    ({"programId": "bad.id"}, ("INVALID", "programId")),
    ({"marketContext": "not a uri"}, ("INVALID", "marketContext")),
    ({"schedule": {**WEEKDAY_EVENINGS, "timeZone": "Mars/Olympus"}}, ("INVALID", "schedule.timeZone")),
    ({"schedule": {"timeZone": "UTC", "rules": [{"days": ["mon"], "start": "20:00", "end": "17:00"}]}},
     ("INVALID", "schedule.rules[0].end")),
    ({"schedule": {"timeZone": "UTC", "rules": [{"days": ["mon"], "start": "25:00", "end": "26:00"}]}},
     ("INVALID", "schedule.rules[0].start")),
    ({"schedule": {"timeZone": "UTC", "rules": [{"days": ["monday"], "start": "17:00", "end": "18:00"}]}},
     ("INVALID", "schedule.rules[0].days[0]")),
    ({"schedule": {"timeZone": "UTC", "rules": [{"days": ["mon"], "start": "07:00", "end": "09:00"},
                                                {"days": ["mon"], "start": "17:00", "end": "18:00"}]}},
     ("INVALID", "schedule.rules[1].days[0]")),
    ({"venIds": ["ven-a", "ghost"]}, ("UNKNOWN_VEN", "venIds[1]")),
    ({"groupIds": ["nowhere"]}, ("NOT_FOUND", "groupIds[0]")),
    ({"level": 7}, ("INVALID", "level")),
    ({"signalType": "price"}, ("INVALID", "signalType")),  # rule 7: a SIMPLE signal is a level
    ({"signalName": "PEAK"}, ("INVALID", "signalName")),
    ({"notification": "soon"}, ("INVALID", "notification")),
])
async def test_create_refusals_name_the_field(client, known, nc, api_settings, change, expected):
    assert error(await gql(client, CREATE, {"input": new_program(**change)})) == expected
    assert await stored(nc, api_settings, "peak") is None


async def test_update_and_enroll_refusals(client, known, nc, api_settings):
    await gql(client, CREATE, {"input": new_program()})
    assert error(await gql(client, CREATE, {"input": new_program()})) == ("CONFLICT", "programId")
    bad_zone = {"programId": "peak", "schedule": {**WEEKDAY_EVENINGS, "timeZone": "Nowhere/City"}}
    assert error(await gql(client, UPDATE, {"input": bad_zone})) == ("INVALID", "schedule.timeZone")
    assert error(await gql(client, UPDATE, {"input": {"programId": "nope", "level": 1}})) == ("NOT_FOUND", "programId")
    assert error(await gql(client, ENROLL, {"id": "peak", "vens": ["ghost"]})) == ("UNKNOWN_VEN", "venIds[0]")
    assert error(await gql(client, ENROLL, {"id": "peak", "groups": ["nowhere"]})) == ("NOT_FOUND", "groupIds[0]")
    assert error(await gql(client, ENROLL, {"id": "peak"})) == ("INVALID", "venIds")
    record = await stored(nc, api_settings, "peak")
    assert record.schedule.time_zone == "Europe/Paris" and record.ven_ids == ["ven-a"]  # unchanged


async def test_program_mutations_need_an_operator(secure_client, tokens):
    for query, variables in ((CREATE, {"input": new_program(venIds=[])}), (DELETE, {"id": "peak"})):
        r = await secure_client.post("/graphql", json={"query": query, "variables": variables},
                                     headers={"Authorization": f"Bearer {tokens['viewer']}"})
        assert r.status_code == 403 and error(r.json())[0] == "FORBIDDEN", r.text
    data = await gql(secure_client, CREATE, {"input": new_program(venIds=[])}, token=tokens["operator"])
    assert "errors" not in data, data
    assert (await gql(secure_client, PROGRAMS, token=tokens["viewer"]))["data"]["programs"][0]["programId"] == "peak"


EVENT = """mutation($input: CreateEventInput!) { createEvent(input: $input) {
  eventId marketContext targets { venIds groupIds marketContexts } } }"""


async def test_an_event_may_target_a_programs_market_context(client, known, scheduler):
    assert "errors" not in await gql(client, CREATE, {"input": new_program(groupIds=["north"])})
    data = await gql(client, EVENT, {"input": {"marketContexts": ["http://utility.example/peak"],
                                               "intervals": [{"duration": "PT1H", "payload": 1}]}})
    assert "errors" not in data, data
    event = data["data"]["createEvent"]
    assert event["targets"]["marketContexts"] == ["http://utility.example/peak"]
    assert event["marketContext"] == "http://utility.example/peak"  # the event belongs to that program
    unknown = await gql(client, EVENT, {"input": {"marketContexts": ["http://utility.example/none"],
                                                  "intervals": [{"duration": "PT1H", "payload": 1}]}})
    assert error(unknown) == ("INVALID", "marketContexts[0]")


async def test_upcoming_names_a_revived_occurrence(client, app, known, engine):
    """A day excluded and then back has a new event, prg-<id>-<day>r<n>: upcoming names it."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from adrstack.shared.tables import DrEventRow

    await gql(client, CREATE, {"input": new_program()})
    app.state.api.programs.clock = lambda: T0
    start = datetime(2030, 3, 5, 16, tzinfo=timezone.utc)
    async with AsyncSession(engine) as s:
        for event_id, status in (("prg-peak-20300305", "cancelled"), ("prg-peak-20300305r1", "far")):
            s.add(DrEventRow(event_id=event_id, modification_number=0, status=status, signal_name="SIMPLE",
                             signal_type="level", start_at=start, end_at=start + timedelta(hours=3),
                             intervals=[{"duration": "PT3H", "payload": 2}], targets={"ven_ids": ["ven-a"]},
                             market_context="http://mc/peak", response_required="always", created_at=T0,
                             modified_at=T0, snapshot={}))
        await s.commit()
    data = await gql(client, UPCOMING, {"id": "peak", "limit": 3})
    assert [o["eventId"] for o in data["data"]["program"]["upcoming"]] == [
        "prg-peak-20300301", "prg-peak-20300305r1", "prg-peak-20300306"]
