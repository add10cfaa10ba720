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
