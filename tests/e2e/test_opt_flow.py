"""EiOpt through the running stack, from a real registered openleadr VEN (its ven_id, its HTTP
session, its VTN URL): an opt schedule with windows (P1_2010/2030), an opt qualifying an event
(P1_2020, E1_1060) that a later oadrCreatedEvent does not override (rule 206, E1_1065), and
oadrCancelOpt (P1_2050) — seen through GraphQL and the NATS facts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_spine import CREATE, FactTap, gql, start_ven, ven_name
from tests.helpers import eventually
from tests.integration.gateway.test_eiopt import code_of, create_opt, created_event, schedule

pytestmark = pytest.mark.e2e

OPTS = """query($v: String, $e: String, $all: Boolean!) {
  optSchedules(venId: $v, eventId: $e, includeCancelled: $all) {
    venId optId optType optReason marketContext eventId modificationNumber resourceIds
    windows { start duration } cancelledAt } }"""
ANSWERS = """query($id: String!) { event(eventId: $id) {
  currentResponses { venId optType source modificationNumber }
  responseSummary { optedIn optedOut noResponse }
  responses { venId optType source } } }"""


async def send(client, service: str, body: str) -> str:
    """POST as the VEN does: its own aiohttp session, its VTN URL and service path."""
    async with client.client_session.post(f"{client.vtn_url}/{service}", data=body) as r:
        assert r.status == 200, await r.text()
        return await r.text()


async def test_opt_schedule_and_event_opt_out_outrank_created_event_and_cancel(stack):
    client, received = await start_ven(stack, ven_name("opt"), opt="optIn")
    ven_id = client.ven_id
    try:
        async with FactTap(stack) as tap:
            event_id = f"opt-{random.randrange(10**9)}"
            start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
            created = await gql(stack, CREATE, {"input": {
                "venIds": [ven_id], "eventId": event_id, "startAt": start.isoformat(),
                "intervals": [{"duration": "PT1H", "payload": 2.0}]}})
            assert "errors" not in created, created

            async def answers():
                return (await gql(stack, ANSWERS, {"id": event_id}))["data"]["event"]

            # The VEN's own oadrCreatedEvent optIn comes first (its handler answers optIn).
            await eventually(lambda: any(e["event_descriptor"]["event_id"] == event_id for e in received), 20,
                             message="event delivered")

            async def opted_in():
                ev = await answers()
                return ev if ev and ev["currentResponses"] else None
            ev = await eventually(opted_in, 20, message="the VEN's optIn stored")
            assert [(r["optType"], r["source"]) for r in ev["currentResponses"]] == [("optIn", "oadrCreatedEvent")]

            # P1_2020 / E1_1060: oadrCreateOpt optOut qualifying the event.
            opt_id = f"evt-opt-{random.randrange(10**6)}"
            answer = await send(client, "EiOpt", create_opt(ven_id, opt_id, "optOut", request_id="r-opt",
                                                            event_id=event_id, modification_number=0))
            assert "oadrCreatedOpt" in answer and code_of(answer) == 200
            assert f"<ei:optID>{opt_id}</ei:optID>" in answer

            async def opted_out():
                ev = await answers()
                return ev if ev and [r["optType"] for r in ev["currentResponses"]] == ["optOut"] else None
            ev = await eventually(opted_out, 20, message="the VEN opted out in GraphQL")
            assert ev["currentResponses"] == [{"venId": ven_id, "optType": "optOut", "source": "oadrCreateOpt",
                                               "modificationNumber": 0}]
            assert ev["responseSummary"] == {"optedIn": 0, "optedOut": 1, "noResponse": 0}
            assert [(r["optType"], r["source"]) for r in ev["responses"]] == [
                ("optIn", "oadrCreatedEvent"), ("optOut", "oadrCreateOpt")]
            opt_facts = await eventually(lambda: tap.messages(stack.subjects.opt(ven_id)), 10, message="opt fact")
            assert [(f["event_id"], f["opt_type"], f["source"]) for f in opt_facts][-1] == (
                event_id, "optOut", "oadrCreateOpt")

            # Rule 206 / E1_1065: a later oadrCreatedEvent optIn for that event changes nothing.
            later = await send(client, "EiEvent", created_event(ven_id, event_id, "optIn"))
            assert code_of(later) == 200
            # An opt schedule sent afterwards is stored (so the gateway handled the optIn before it).
            sched_id = f"sched-{random.randrange(10**6)}"
            window_start = start.replace(minute=0, second=0) + timedelta(days=1)
            body = create_opt(ven_id, sched_id, "optOut", request_id="r-sched", market_context="http://mc.example/a",
                              vavailability=schedule((window_start, timedelta(hours=2)),
                                                     (window_start + timedelta(days=1), timedelta(minutes=30))))
            answer = await send(client, "EiOpt", body)
            assert "oadrCreatedOpt" in answer and code_of(answer) == 200  # P1_2010 / P1_2030

            async def schedule_listed():
                found = (await gql(stack, OPTS, {"v": ven_id, "e": None, "all": False}))["data"]["optSchedules"]
                return [s for s in found if s["optId"] == sched_id]
            [listed] = await eventually(schedule_listed, 20, message="opt schedule in GraphQL")
            assert listed["optType"] == "optOut" and listed["marketContext"] == "http://mc.example/a"
            assert listed["eventId"] is None and listed["resourceIds"] == ["building-1"]
            assert [(datetime.fromisoformat(w["start"]), w["duration"]) for w in listed["windows"]] == [
                (window_start, "PT2H"), (window_start + timedelta(days=1), "PT30M")]
            assert listed["cancelledAt"] is None

            ev = await answers()
            assert [(r["optType"], r["source"]) for r in ev["currentResponses"]] == [("optOut", "oadrCreateOpt")]
            assert ev["responseSummary"]["optedOut"] == 1 and ev["responseSummary"]["optedIn"] == 0
            assert [f["opt_type"] for f in tap.messages(stack.subjects.opt(ven_id))
                    if f["event_id"] == event_id][-1] == "optOut"
            # The event-qualifying opt is listed for the event too.
            by_event = (await gql(stack, OPTS, {"v": None, "e": event_id, "all": False}))["data"]["optSchedules"]
            assert [(s["optId"], s["optType"], s["modificationNumber"], s["windows"]) for s in by_event] == [
                (opt_id, "optOut", 0, [])]

            # P1_2050: oadrCancelOpt withdraws the schedule; an unknown optID is 452.
            unknown = await send(client, "EiOpt", _cancel(client, "no-such-opt"))
            assert "oadrCanceledOpt" in unknown and code_of(unknown) == 452
            cancelled = await send(client, "EiOpt", _cancel(client, sched_id))
            assert "oadrCanceledOpt" in cancelled and code_of(cancelled) == 200
            assert f"<ei:optID>{sched_id}</ei:optID>" in cancelled

            async def withdrawn():
                found = (await gql(stack, OPTS, {"v": ven_id, "e": None, "all": True}))["data"]["optSchedules"]
                mine = [s for s in found if s["optId"] == sched_id]
                return mine if mine and mine[0]["cancelledAt"] else None
            [gone] = await eventually(withdrawn, 20, message="opt schedule withdrawn in GraphQL")
            assert datetime.fromisoformat(gone["cancelledAt"]).tzinfo is not None
            active = (await gql(stack, OPTS, {"v": ven_id, "e": None, "all": False}))["data"]["optSchedules"]
            assert sched_id not in [s["optId"] for s in active] and opt_id in [s["optId"] for s in active]
            schedule_facts = {f["id"]: f for f in tap.messages(stack.subjects.opt_schedule(ven_id))}.values()
            assert [(f["opt_id"], f["cancelled"]) for f in schedule_facts] == [
                (opt_id, False), (sched_id, False), (sched_id, True)]
    finally:
        await client.stop()


def _cancel(client, opt_id: str) -> str:
    return client._create_message("oadrCancelOpt", opt_id=opt_id, ven_id=client.ven_id,
                                  request_id=f"c-{random.randrange(10**6)}")
