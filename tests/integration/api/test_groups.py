"""VEN groups over GraphQL (the groups KV bucket, compare-and-set) and events targeting groups and
resource ids: checked against the groups and what telemetry stored of the VENs' reports."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared import kv_keys
from adrstack.shared.messages import CreateEventCommand, GroupRecord, ModifyEventCommand, decode
from adrstack.shared.tables import ReportDescriptionRow, Ven

from .helpers import bearer, gql

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)

GROUP = "groupId name venIds updatedAt"
CREATE_GROUP = f"""mutation($id: String!, $name: String, $vens: [String!]) {{
  createGroup(groupId: $id, name: $name, venIds: $vens) {{ {GROUP} }} }}"""
ADD = f"""mutation($id: String!, $vens: [String!]!) {{ addVensToGroup(groupId: $id, venIds: $vens) {{ {GROUP} }} }}"""
REMOVE = f"""mutation($id: String!, $vens: [String!]!) {{
  removeVensFromGroup(groupId: $id, venIds: $vens) {{ {GROUP} }} }}"""
DELETE = f"""mutation($id: String!) {{ deleteGroup(groupId: $id) {{ {GROUP} }} }}"""
GROUPS = f"""query($limit: Int) {{ groups(limit: $limit) {{ {GROUP} }} }}"""
ONE_GROUP = f"""query($id: String!) {{ group(groupId: $id) {{ {GROUP} }} }}"""
CREATE_EVENT = """mutation($input: CreateEventInput!) {
  createEvent(input: $input) { eventId targets { venIds groupIds resourceIds } } }"""
MODIFY_EVENT = """mutation($input: ModifyEventInput!) {
  modifyEvent(input: $input) { eventId targets { venIds groupIds resourceIds } } }"""
HOUR = [{"duration": "PT1H", "payload": 1}]


@pytest.fixture
async def known_vens(engine):
    """VENs and report descriptions as telemetry stores them (ven-gone deregistered)."""
    async with AsyncSession(engine) as s:
        for ven_id in ("ven-a", "ven-b", "ven-c", "ven-gone"):
            s.add(Ven(ven_id=ven_id, ven_name=f"building-{ven_id}", registration_id=f"reg-{ven_id}",
                      registered_at=T0, updated_at=T0,
                      deregistered_at=T0 if ven_id == "ven-gone" else None))
        for ven_id, resource_id in (("ven-a", "meter-1"), ("ven-b", "meter-1"), ("ven-c", "pv-9"),
                                    ("ven-gone", "meter-gone")):
            s.add(ReportDescriptionRow(ven_id=ven_id, report_specifier_id="usage", r_id="power",
                                       report_name="TELEMETRY_USAGE", resource_id=resource_id, registered_at=T0))
        await s.commit()


def error(data: dict) -> tuple[str, str | None]:
    [e] = data["errors"]
    return e["extensions"]["code"], e["extensions"]["field"]


async def stored(nc, api_settings, group_id: str) -> GroupRecord | None:
    kv = await nc.jetstream().key_value(api_settings.groups_bucket)
    try:
        entry = await kv.get(kv_keys.group_key(group_id))
    except Exception:
        return None
    return GroupRecord.model_validate_json(entry.value) if entry.value else None


async def test_group_lifecycle(client, known_vens, nc, api_settings):
    data = await gql(client, CREATE_GROUP, {"id": "north", "name": "North feeder", "vens": ["ven-a", "ven-a"]})
    assert "errors" not in data, data
    assert data["data"]["createGroup"]["venIds"] == ["ven-a"]
    assert (await stored(nc, api_settings, "north")).ven_ids == ["ven-a"]

    data = await gql(client, ADD, {"id": "north", "vens": ["ven-b", "ven-a", "ven-gone"]})
    assert data["data"]["addVensToGroup"]["venIds"] == ["ven-a", "ven-b", "ven-gone"]
    data = await gql(client, REMOVE, {"id": "north", "vens": ["ven-a", "ven-gone", "never-there"]})
    assert data["data"]["removeVensFromGroup"]["venIds"] == ["ven-b"]
    assert (await stored(nc, api_settings, "north")).ven_ids == ["ven-b"]

    await gql(client, CREATE_GROUP, {"id": "empty"})
    data = await gql(client, GROUPS)
    assert [(g["groupId"], g["name"], g["venIds"]) for g in data["data"]["groups"]] == [
        ("empty", None, []), ("north", "North feeder", ["ven-b"])]
    assert [g["groupId"] for g in (await gql(client, GROUPS, {"limit": 1}))["data"]["groups"]] == ["empty"]
    assert (await gql(client, ONE_GROUP, {"id": "north"}))["data"]["group"]["venIds"] == ["ven-b"]

    data = await gql(client, DELETE, {"id": "north"})
    assert data["data"]["deleteGroup"]["groupId"] == "north"
    assert await stored(nc, api_settings, "north") is None
    assert (await gql(client, ONE_GROUP, {"id": "north"}))["data"]["group"] is None
    assert (await gql(client, DELETE, {"id": "north"}))["data"]["deleteGroup"] is None


async def test_group_refusals(client, known_vens, nc, api_settings):
    assert error(await gql(client, CREATE_GROUP, {"id": "g", "vens": ["ven-a", "ghost"]})) == ("UNKNOWN_VEN",
                                                                                                 "venIds[1]")
    assert await stored(nc, api_settings, "g") is None  # nothing written
    assert error(await gql(client, CREATE_GROUP, {"id": "bad.id"})) == ("INVALID", "groupId")
    assert error(await gql(client, CREATE_GROUP, {"id": "g", "vens": ["bad id"]})) == ("INVALID", "venIds[0]")
    assert error(await gql(client, CREATE_GROUP, {"id": "g", "name": " "})) == ("INVALID", "name")
    await gql(client, CREATE_GROUP, {"id": "g", "vens": ["ven-a"]})
    assert error(await gql(client, CREATE_GROUP, {"id": "g"})) == ("CONFLICT", "groupId")
    assert error(await gql(client, ADD, {"id": "g", "vens": ["ghost"]})) == ("UNKNOWN_VEN", "venIds[0]")
    assert error(await gql(client, ADD, {"id": "nope", "vens": ["ven-a"]})) == ("NOT_FOUND", "groupId")
    assert error(await gql(client, REMOVE, {"id": "nope", "vens": ["ven-a"]})) == ("NOT_FOUND", "groupId")
    assert error(await gql(client, ADD, {"id": "g", "vens": []})) == ("INVALID", "venIds")
    assert error(await gql(client, GROUPS, {"limit": 10_001})) == ("INVALID", "limit")
    assert (await stored(nc, api_settings, "g")).ven_ids == ["ven-a"]


async def test_concurrent_additions_all_land(client, known_vens, nc, api_settings):
    import asyncio

    await gql(client, CREATE_GROUP, {"id": "busy"})
    await asyncio.gather(*(gql(client, ADD, {"id": "busy", "vens": [v]}) for v in ("ven-a", "ven-b", "ven-c")))
    assert sorted((await stored(nc, api_settings, "busy")).ven_ids) == ["ven-a", "ven-b", "ven-c"]


async def test_a_viewer_cannot_change_groups(secure_client, tokens, known_vens, nc, api_settings):
    for query, variables in ((CREATE_GROUP, {"id": "v"}), (ADD, {"id": "v", "vens": ["ven-a"]}),
                             (REMOVE, {"id": "v", "vens": ["ven-a"]}), (DELETE, {"id": "v"})):
        r = await secure_client.post("/graphql", json={"query": query, "variables": variables},
                                     headers=bearer(tokens["viewer"]))
        assert error(r.json())[0] == "FORBIDDEN", r.text
    assert await stored(nc, api_settings, "v") is None
    data = await gql(secure_client, CREATE_GROUP, {"id": "v", "vens": ["ven-a"]}, token=tokens["operator"])
    assert "errors" not in data, data
    data = await gql(secure_client, GROUPS, token=tokens["viewer"])  # reading is a viewer's
    assert [g["groupId"] for g in data["data"]["groups"]] == ["v"]


async def test_events_target_groups_and_resources(client, scheduler, known_vens):
    await gql(client, CREATE_GROUP, {"id": "north", "vens": ["ven-a", "ven-b"]})
    data = await gql(client, CREATE_EVENT, {"input": {"groupIds": ["north"], "resourceIds": ["pv-9"],
                                                      "intervals": HOUR, "eventId": "ev-g"}})
    assert "errors" not in data, data
    assert data["data"]["createEvent"]["targets"] == {"venIds": [], "groupIds": ["north"], "resourceIds": ["pv-9"]}
    (_, payload), = scheduler.requests
    cmd = decode(CreateEventCommand, payload)
    assert (cmd.ven_ids, cmd.group_ids, cmd.resource_ids) == ([], ["north"], ["pv-9"])

    data = await gql(client, MODIFY_EVENT, {"input": {"eventId": "ev-g", "groupIds": [], "venIds": ["ven-c"]}})
    assert "errors" not in data, data
    assert data["data"]["modifyEvent"]["targets"] == {"venIds": ["ven-c"], "groupIds": [], "resourceIds": ["pv-9"]}
    cmd = decode(ModifyEventCommand, scheduler.requests[-1][1])
    assert (cmd.ven_ids, cmd.group_ids, cmd.resource_ids) == (["ven-c"], [], None)


@pytest.mark.parametrize("targets, field", [
    ({}, "venIds"),
    ({"venIds": [], "groupIds": []}, "venIds"),
    ({"groupIds": ["nope"]}, "groupIds[0]"),
    ({"groupIds": ["north", "empty"]}, "groupIds[1]"),
    ({"groupIds": ["bad.group"]}, "groupIds[0]"),
    ({"resourceIds": ["meter-1", "no-such-meter"]}, "resourceIds[1]"),
    ({"resourceIds": ["meter-gone"]}, "resourceIds[0]"),  # only a deregistered VEN declared it
    ({"resourceIds": ["\x00"]}, "resourceIds[0]"),
    ({"venIds": ["ven-a"], "groupIds": ["nope"]}, "groupIds[0]"),
])
async def test_targets_matching_no_ven_are_refused(client, scheduler, known_vens, targets, field):
    await gql(client, CREATE_GROUP, {"id": "north", "vens": ["ven-a"]})
    await gql(client, CREATE_GROUP, {"id": "empty"})
    data = await gql(client, CREATE_EVENT, {"input": {**targets, "intervals": HOUR}})
    assert error(data) == ("INVALID", field), data
    assert scheduler.requests == []  # nothing was sent


async def test_modify_checks_new_targets(client, scheduler, known_vens):
    await gql(client, CREATE_EVENT, {"input": {"venIds": ["ven-a"], "intervals": HOUR, "eventId": "ev-m"}})
    sent = len(scheduler.requests)
    assert error(await gql(client, MODIFY_EVENT, {"input": {"eventId": "ev-m", "groupIds": ["nope"]}})) == (
        "INVALID", "groupIds[0]")
    assert error(await gql(client, MODIFY_EVENT, {"input": {"eventId": "ev-m", "venIds": []}})) == (
        "INVALID", "venIds")
    assert len(scheduler.requests) == sent


async def test_send_event_takes_groups_and_resources(client, scheduler, known_vens):
    await gql(client, CREATE_GROUP, {"id": "north", "vens": ["ven-a"]})
    r = await client.post("/send_event", json={"group_ids": ["north"], "signal_level": 2, "event_id": "ev-s"})
    assert r.status_code == 200, r.text
    assert r.json()["targets"]["group_ids"] == ["north"] and r.json()["targets"]["ven_ids"] == []
    r = await client.post("/send_event", json={"resource_ids": ["meter-1"], "signal_level": 1})
    assert r.status_code == 200, r.text
    assert r.json()["targets"]["resource_ids"] == ["meter-1"]
    sent = len(scheduler.requests)
    r = await client.post("/send_event", json={"group_ids": ["nope"], "signal_level": 1})
    assert r.status_code == 422 and r.json()["field"] == "group_ids[0]", r.text
    r = await client.post("/send_event", json={"resource_ids": ["no-such-meter"], "signal_level": 1})
    assert r.status_code == 422 and r.json()["field"] == "resource_ids[0]", r.text
    r = await client.post("/send_event", json={"signal_level": 1})
    assert r.status_code == 422 and r.json()["field"] == "ven_id", r.text
    assert len(scheduler.requests) == sent


async def test_a_group_live_events_or_programs_target_is_not_deleted(client, known_vens, engine, nc, api_settings):
    """Deleting it would leave those events reaching nobody: CONFLICT until they are over, cancelled
    or retargeted (events as telemetry stored them), and until no program enrolls it."""
    from adrstack.shared.tables import DrEventRow

    await gql(client, CREATE_GROUP, {"id": "north", "vens": ["ven-a"]})

    def event_row(event_id: str, status: str) -> DrEventRow:
        return DrEventRow(event_id=event_id, modification_number=0, status=status, signal_name="SIMPLE",
                          signal_type="level", start_at=T0, end_at=T0, intervals=[{"duration": "PT1H", "payload": 1}],
                          targets={"ven_ids": [], "group_ids": ["north"]}, market_context="http://m",
                          response_required="always", created_at=T0, modified_at=T0, snapshot={})

    async with AsyncSession(engine) as s:
        s.add_all([event_row("ev-live", "far"), event_row("ev-over", "completed")])
        await s.commit()
    data = await gql(client, DELETE, {"id": "north"})
    assert error(data) == ("CONFLICT", "groupId") and "ev-live" in data["errors"][0]["message"]
    assert await stored(nc, api_settings, "north") is not None

    async with AsyncSession(engine) as s:
        (await s.get(DrEventRow, "ev-live")).status = "cancelled"
        await s.commit()
    kv = await nc.jetstream().key_value(api_settings.programs_bucket)
    from adrstack.shared.programs import ProgramRecord, ProgramSchedule
    await kv.put(kv_keys.program_key("peak"), ProgramRecord(
        program_id="peak", market_context="http://mc/peak", group_ids=["north"],
        schedule=ProgramSchedule(time_zone="UTC")).to_bytes())
    data = await gql(client, DELETE, {"id": "north"})
    assert error(data) == ("CONFLICT", "groupId") and "peak" in data["errors"][0]["message"]
    await kv.delete(kv_keys.program_key("peak"))
    assert (await gql(client, DELETE, {"id": "north"}))["data"]["deleteGroup"]["groupId"] == "north"
    assert await stored(nc, api_settings, "north") is None
