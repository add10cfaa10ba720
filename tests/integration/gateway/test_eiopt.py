"""EiOpt from the VEN side: opt schedules and opts qualifying an event (P1_2010, 2015, 2020, 2030,
2040, 2050; E1_1060, E1_1065), against a real Gateway and NATS, the VEN registered with openleadr."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiohttp
from openleadr.messaging import create_message

from adrstack.shared import kv_keys
from tests.helpers import eventually

from .test_events import make_event, put_event, registered

AT = datetime(2026, 11, 30, 17, 0, tzinfo=timezone.utc)


async def post(gateway, service: str, body: str) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gateway.vtn_url}/{service}", data=body.encode(),
                          headers={"Content-Type": "application/xml"}) as r:
            assert r.status == 200
            return await r.text()


def code_of(answer: str) -> int:
    return int(answer.split("<ei:responseCode>")[1].split("<")[0])


def create_opt(ven_id: str, opt_id: str, opt_type: str = "optOut", request_id: str = "req-1", **extra) -> str:
    return create_message("oadrCreateOpt", opt_id=opt_id, opt_type=opt_type, opt_reason="participating",
                          ven_id=ven_id, created_date_time=AT, request_id=request_id,
                          targets=[{"resource_id": "building-1"}], **extra)


def schedule(*windows: tuple[datetime, timedelta]) -> dict:
    return {"components": [{"dtstart": start, "duration": length} for start, length in windows]}


def created_event(ven_id: str, event_id: str, opt_type: str, modification: int = 0) -> str:
    return create_message("oadrCreatedEvent", ven_id=ven_id,
                          response={"response_code": 200, "response_description": "OK", "request_id": "r-ce"},
                          event_responses=[{"response_code": 200, "response_description": "OK", "request_id": "r-ce",
                                            "event_id": event_id, "modification_number": modification,
                                            "opt_type": opt_type}])


async def test_an_opt_schedule_is_acknowledged_stored_and_published(gateway, bus, vens):
    """P1_2010 (an opt schedule in a vavailability), P1_2015 (with a marketContext): oadrCreatedOpt
    200 echoing the optID; the schedule stored and published as a fact."""
    client = await registered(vens, "scheduler-ven", gateway.vtn_url)
    body = create_opt(client.ven_id, "opt-sched-1", "optOut", market_context="http://market.example/ctx",
                      vavailability=schedule((AT, timedelta(hours=2)), (AT + timedelta(days=1), timedelta(hours=1))))
    answer = await post(gateway, "EiOpt", body)
    assert "oadrCreatedOpt" in answer and code_of(answer) == 200
    assert "<ei:optID>opt-sched-1</ei:optID>" in answer  # echoed (P1_2010)

    facts = await eventually(lambda: bus.stored(bus.subjects.opt_schedule(client.ven_id)), message="opt schedule fact")
    (fact,) = facts
    assert fact["opt_id"] == "opt-sched-1" and fact["opt_type"] == "optOut" and not fact["cancelled"]
    assert fact["resource_ids"] == ["building-1"] and fact["market_context"] == "http://market.example/ctx"
    assert [(w["start"][:16], w["duration_seconds"]) for w in fact["windows"]] == [
        ("2026-11-30T17:00", 7200.0), ("2026-12-01T17:00", 3600.0)]
    stored = await bus.kv_json(kv_keys.opts_key(client.ven_id))
    assert list(stored["opts"]) == ["opt-sched-1"]


async def test_an_opt_schedule_for_a_device_class_and_a_target_is_accepted(gateway, bus, vens):
    """P1_2030: oadrCreateOpt with a vavailability, a marketContext, an eiTarget (two resourceIDs)
    and an oadrDeviceClass (an endDeviceAsset mrid) → oadrCreatedOpt 200 echoing the optID; the
    schedule is published with the target's resources and the device class it is for."""
    client = await registered(vens, "device-class-ven", gateway.vtn_url)
    body = create_message("oadrCreateOpt", opt_id="opt-dc-1", opt_type="optOut", opt_reason="participating",
                          ven_id=client.ven_id, created_date_time=AT, request_id="req-dc",
                          market_context="http://market.example/ctx", signal_target_mrid="Hvac",
                          targets=[{"resource_id": "building-1"}],
                          vavailability=schedule((AT, timedelta(hours=1))))
    # One eiTarget with two resources (openleadr writes an eiTarget per target, which the XSD refuses).
    body = body.replace("<ei:resourceID>building-1</ei:resourceID>",
                        "<ei:resourceID>building-1</ei:resourceID><ei:resourceID>building-2</ei:resourceID>")
    assert "<oadr:oadrDeviceClass>" in body and "<power:mrid>Hvac</power:mrid>" in body
    answer = await post(gateway, "EiOpt", body)
    assert "oadrCreatedOpt" in answer and code_of(answer) == 200
    assert "<ei:optID>opt-dc-1</ei:optID>" in answer
    (fact,) = await eventually(lambda: bus.stored(bus.subjects.opt_schedule(client.ven_id)), message="fact")
    assert fact["opt_id"] == "opt-dc-1" and fact["market_context"] == "http://market.example/ctx"
    assert sorted(fact["resource_ids"]) == ["building-1", "building-2"]
    assert [w["duration_seconds"] for w in fact["windows"]] == [3600.0]
    assert fact["device_classes"] == ["Hvac"]  # an opt for the HVAC only, not the whole VEN


async def test_the_same_opt_id_replaces_the_schedule(gateway, bus, vens):
    client = await registered(vens, "replacing-ven", gateway.vtn_url)
    first = create_opt(client.ven_id, "opt-r", "optOut", request_id="a", vavailability=schedule((AT, timedelta(hours=1))))
    second = create_opt(client.ven_id, "opt-r", "optIn", request_id="b", vavailability=schedule((AT, timedelta(hours=3))))
    assert code_of(await post(gateway, "EiOpt", first)) == 200
    assert code_of(await post(gateway, "EiOpt", second)) == 200  # P1_2040
    stored = await bus.kv_json(kv_keys.opts_key(client.ven_id))
    assert list(stored["opts"]) == ["opt-r"] and stored["opts"]["opt-r"]["opt_type"] == "optIn"
    assert stored["opts"]["opt-r"]["windows"][0]["duration_seconds"] == 10800.0


async def test_an_opt_for_an_event_sets_the_answer_and_outranks_created_event(gateway, bus, vens):
    client = await registered(vens, "event-opter", gateway.vtn_url)
    await put_event(bus, make_event("evt-opt-1", [client.ven_id]))
    await eventually(lambda: gateway.events.get("evt-opt-1") is not None, message="event mirrored")

    answer = await post(gateway, "EiOpt", create_opt(client.ven_id, "opt-e", "optIn", event_id="evt-opt-1",
                                                      modification_number=0))
    assert code_of(answer) == 200  # P1_2020 / E1_1060
    responses = await eventually(lambda: bus.stored(bus.subjects.opt(client.ven_id)), message="opt response fact")
    assert [(r["event_id"], r["opt_type"], r["source"]) for r in responses] == [("evt-opt-1", "optIn", "oadrCreateOpt")]

    # E1_1065 (rule 206): a later oadrCreatedEvent optOut for that event changes nothing.
    later = await post(gateway, "EiEvent", created_event(client.ven_id, "evt-opt-1", "optOut"))
    assert code_of(later) == 200
    assert [r["opt_type"] for r in await bus.stored(bus.subjects.opt(client.ven_id))] == ["optIn"]


async def test_opts_about_unknown_or_foreign_events_and_empty_opts_are_refused(gateway, bus, vens):
    client = await registered(vens, "careless-ven", gateway.vtn_url)
    other = await registered(vens, "other-ven", gateway.vtn_url)
    await put_event(bus, make_event("evt-not-mine", [other.ven_id]))
    await eventually(lambda: gateway.events.get("evt-not-mine") is not None, message="event mirrored")
    unknown = await post(gateway, "EiOpt", create_opt(client.ven_id, "o1", event_id="evt-nope", modification_number=0))
    foreign = await post(gateway, "EiOpt", create_opt(client.ven_id, "o2", event_id="evt-not-mine",
                                                       modification_number=0))
    empty = await post(gateway, "EiOpt", create_opt(client.ven_id, "o3"))
    assert (code_of(unknown), code_of(foreign), code_of(empty)) == (452, 462, 454)
    assert await bus.stored(bus.subjects.opt_schedule(client.ven_id)) == []
    assert await bus.kv_json(kv_keys.opts_key(client.ven_id)) is None


async def test_cancel_opt_withdraws_it_and_an_unknown_opt_id_is_452(gateway, bus, vens):
    client = await registered(vens, "cancelling-ven", gateway.vtn_url)
    unknown = await post(gateway, "EiOpt", create_message("oadrCancelOpt", opt_id="nope", ven_id=client.ven_id,
                                                          request_id="c0"))
    assert "oadrCanceledOpt" in unknown and code_of(unknown) == 452  # P1_2050
    assert code_of(await post(gateway, "EiOpt", create_opt(client.ven_id, "opt-c",
                                                            vavailability=schedule((AT, timedelta(hours=1)))))) == 200
    answer = await post(gateway, "EiOpt", create_message("oadrCancelOpt", opt_id="opt-c", ven_id=client.ven_id,
                                                         request_id="c1"))
    assert "oadrCanceledOpt" in answer and code_of(answer) == 200 and "<ei:optID>opt-c</ei:optID>" in answer
    facts = await bus.stored(bus.subjects.opt_schedule(client.ven_id))
    assert [(f["opt_id"], f["cancelled"]) for f in facts] == [("opt-c", False), ("opt-c", True)]
    assert (await bus.kv_json(kv_keys.opts_key(client.ven_id)))["opts"] == {}
