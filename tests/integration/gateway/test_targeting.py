"""Events targeting groups and resource ids reach the VENs those resolve to, on a real Gateway with
real openleadr VENs; group membership changes move the current event."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adrstack.shared import jetstream, kv_keys
from adrstack.shared.messages import GroupRecord
from tests.helpers import eventually

from .test_events import make_event, poll_until_events, put_event, registered


@pytest.fixture
async def groups(bus):
    return await jetstream.ensure_kv(bus.js, bus.settings.groups_bucket)


async def put_group(groups, group_id: str, ven_ids: list[str]) -> None:
    await groups.put(kv_keys.group_key(group_id), GroupRecord(group_id=group_id, ven_ids=ven_ids).to_bytes())


def event_ids(payload: dict) -> list[str]:
    return [e["event_descriptor"]["event_id"] for e in payload.get("events") or []]


async def test_a_group_event_reaches_its_members_and_follows_membership(gateway, bus, vens, groups):
    member = await registered(vens, "member", gateway.vtn_url)
    joiner = await registered(vens, "joiner", gateway.vtn_url)
    outsider = await registered(vens, "outsider", gateway.vtn_url)
    await put_group(groups, "north", [member.ven_id])
    await put_event(bus, make_event("grp-1", [], targets={"group_ids": ["north"]}))

    payload = await poll_until_events(member)
    assert event_ids(payload) == ["grp-1"]
    [delivered] = payload["events"]
    # The eiTarget names the group (and, as always, the VEN itself).
    targets = delivered["targets"]
    assert {"group_id": "north"} in targets and {"ven_id": member.ven_id} in targets
    assert (await joiner.poll())[0] == "oadrResponse"
    assert (await outsider.poll())[0] == "oadrResponse"

    # Joining the group: the current event comes with the joiner's next poll.
    await put_group(groups, "north", [member.ven_id, joiner.ven_id])
    payload = await poll_until_events(joiner)
    assert event_ids(payload) == ["grp-1"]
    assert (await member.poll())[0] == "oadrResponse"  # nothing changed for the member
    assert (await outsider.poll())[0] == "oadrResponse"

    # Leaving it: the member is told its events again, without this one.
    await put_group(groups, "north", [joiner.ven_id])
    payload = await poll_until_events(member)
    assert "grp-1" not in event_ids(payload)
    assert gateway.events.for_ven(member.ven_id) == []
    assert [e.event_id for e in gateway.events.for_ven(joiner.ven_id)] == ["grp-1"]
    assert (await member.poll())[0] == "oadrResponse"


async def test_an_event_for_a_vens_group_and_its_own_id_is_delivered_once(gateway, bus, vens, groups):
    client = await registered(vens, "both-ways", gateway.vtn_url)
    await put_group(groups, "g1", [client.ven_id])
    await put_group(groups, "g2", [client.ven_id])
    await put_event(bus, make_event("twice", [client.ven_id], targets={"ven_ids": [client.ven_id],
                                                                        "group_ids": ["g1", "g2"]}))
    payload = await poll_until_events(client)
    assert event_ids(payload) == ["twice"]


async def test_a_resource_event_reaches_the_ven_that_registered_the_resource(gateway, bus, vens):
    metered = vens("metered", gateway.vtn_url)
    metered.add_report(callback=lambda: 1.0, resource_id="meter-7", measurement="RealPower", unit="W",
                       report_specifier_id="usage-7", r_id="power-7", sampling_rate=timedelta(seconds=1),
                       report_duration=timedelta(hours=1))
    await metered.create_party_registration()
    await metered.register_reports(metered.reports)
    other = await registered(vens, "unmetered", gateway.vtn_url)
    await eventually(lambda: gateway.events._vens_by_resource.get("meter-7"), 10, message="resource indexed")

    await put_event(bus, make_event("res-1", [], targets={"resource_ids": ["meter-7"]}))
    payload = await poll_until_events(metered)
    assert event_ids(payload) == ["res-1"]
    assert {"resource_id": "meter-7"} in payload["events"][0]["targets"]
    assert (await other.poll())[0] == "oadrResponse"


async def test_a_market_context_event_reaches_the_programs_enrolled_vens(gateway, bus, vens, groups):
    from datetime import time

    from adrstack.shared.programs import ProgramRecord, ProgramSchedule, ScheduleRule

    direct = await registered(vens, "mc-direct", gateway.vtn_url)
    via_group = await registered(vens, "mc-group", gateway.vtn_url)
    outsider = await registered(vens, "mc-outsider", gateway.vtn_url)
    await put_group(groups, "mc-north", [via_group.ven_id])
    programs = await jetstream.ensure_kv(bus.js, bus.settings.programs_bucket)
    schedule = ProgramSchedule(time_zone="UTC", rules=[ScheduleRule(days=["mon"], start=time(17), end=time(18))])

    async def put_program(ven_ids, group_ids):
        record = ProgramRecord(program_id="peak", market_context="http://mc/peak", ven_ids=ven_ids,
                               group_ids=group_ids, schedule=schedule)
        await programs.put(kv_keys.program_key("peak"), record.to_bytes())

    await put_program([direct.ven_id], ["mc-north"])
    await eventually(lambda: gateway.events.programs is not None and "peak" in gateway.events.programs)
    await put_event(bus, make_event("mc-1", [], targets={"market_contexts": ["http://mc/peak"]}))
    assert event_ids(await poll_until_events(direct)) == ["mc-1"]
    assert event_ids(await poll_until_events(via_group)) == ["mc-1"]
    assert (await outsider.poll())[0] == "oadrResponse"

    # Enrolling the outsider in the program: the current event follows.
    await put_program([direct.ven_id, outsider.ven_id], ["mc-north"])
    assert event_ids(await poll_until_events(outsider)) == ["mc-1"]
