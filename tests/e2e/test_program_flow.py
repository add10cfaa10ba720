"""A program through the running stack: created through GraphQL with a window a few seconds
ahead in a named time zone and a real openleadr VEN enrolled; the scheduler's occurrence
events prg-<program>-<yyyymmdd> reach the VEN with the program's market context (E1_1020 with a
market context) at modificationNumber 0 (rule 4), today's goes active on time; editing the
schedule modifies tomorrow's occurrence, which the VEN gets as modificationNumber 1 (rule 5,
E1_1030), and leaves the active one alone."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from adrstack.shared.programs import occurrence_event_id
from tests.e2e.test_spine import FactTap, gql, recorder, start_ven, ven_name
from tests.helpers import eventually
from tests.integration.scheduler.test_programs import ALL_DAYS, local, midday_zone

pytestmark = pytest.mark.e2e

CREATE = """mutation($input: CreateProgramInput!) { createProgram(input: $input) {
  programId marketContext venIds level notification schedule { timeZone rules { days start end } }
  upcoming(limit: 2) { eventId date startAt endAt } } }"""
UPDATE = """mutation($input: UpdateProgramInput!) { updateProgram(input: $input) {
  upcoming(limit: 2) { eventId startAt endAt } } }"""
DELETE = """mutation($id: String!) { deleteProgram(programId: $id) { programId } }"""
EVENTS = """query($p: String!) { events(program: $p) { eventId status modificationNumber marketContext
  startAt endAt intervals { duration payload } targets { venIds } } }"""


async def test_a_program_occurrence_reaches_the_ven_and_an_edit_modifies_the_next_one(stack):
    client, _ = await start_ven(stack, ven_name("prg"))
    received = recorder(client)
    program_id = f"e2e-prg-{random.randrange(10**9)}"
    market_context = f"http://utility.example/programs/{program_id}"
    tz = midday_zone()  # windows from now end the same local day whatever time the test runs
    today, at = local(tz, seconds=6)
    _, until = local(tz, minutes=2)
    tomorrow = today + timedelta(days=1)
    today_id, tomorrow_id = occurrence_event_id(program_id, today), occurrence_event_id(program_id, tomorrow)

    def seen(event_id: str, **descriptor):
        return [e for e in received if e["event_descriptor"]["event_id"] == event_id
                and all(e["event_descriptor"][k] == v for k, v in descriptor.items())]

    try:
        async with FactTap(stack) as tap:
            created = await gql(stack, CREATE, {"input": {
                "programId": program_id, "marketContext": market_context, "venIds": [client.ven_id],
                "level": 2, "notification": "PT0S",
                "schedule": {"timeZone": tz.key, "rules": [{"days": ALL_DAYS, "start": at.isoformat(),
                                                            "end": until.isoformat()}]}}})
            assert "errors" not in created, created
            program = created["data"]["createProgram"]
            assert program["venIds"] == [client.ven_id] and program["schedule"]["timeZone"] == tz.key
            today_start = datetime.combine(today, at, tzinfo=tz)
            assert [(o["eventId"], datetime.fromisoformat(o["startAt"])) for o in program["upcoming"]] == [
                (today_id, today_start), (tomorrow_id, datetime.combine(tomorrow, at, tzinfo=tz))]

            # Both occurrences reach the VEN, with the program's market context and window.
            first = (await eventually(lambda: seen(today_id), 20, message="today's occurrence delivered"))[0]
            assert first["event_descriptor"]["market_context"] == market_context
            assert first["event_descriptor"]["modification_number"] == 0
            assert first["active_period"]["dtstart"] == today_start
            assert first["active_period"]["duration"] == datetime.combine(today, until, tzinfo=tz) - today_start
            assert first["event_signals"][0]["intervals"][0]["signal_payload"] == 2.0
            assert first["targets"] == [{"ven_id": client.ven_id}]
            nxt = (await eventually(lambda: seen(tomorrow_id), 20, message="tomorrow's occurrence delivered"))[0]
            assert nxt["event_descriptor"]["market_context"] == market_context
            assert nxt["event_descriptor"]["modification_number"] == 0

            # Today's window opens on time: active on the VEN.
            await eventually(lambda: seen(today_id, event_status="active"), 20, message="today's active delivered")
            assert datetime.now(timezone.utc) >= today_start

            # A later window at level 3: tomorrow's occurrence follows, today's (active) stays.
            _, later_at = local(tz, minutes=3)
            _, later_until = local(tz, minutes=4)
            updated = await gql(stack, UPDATE, {"input": {"programId": program_id, "level": 3, "schedule": {
                "timeZone": tz.key, "rules": [{"days": ALL_DAYS, "start": later_at.isoformat(),
                                               "end": later_until.isoformat()}]}}})
            assert "errors" not in updated, updated
            tomorrow_start = datetime.combine(tomorrow, later_at, tzinfo=tz)
            modified = (await eventually(lambda: seen(tomorrow_id, modification_number=1), 20,
                                         message="tomorrow's modification delivered"))[0]
            assert modified["active_period"]["dtstart"] == tomorrow_start
            assert modified["event_descriptor"]["market_context"] == market_context
            assert modified["event_signals"][0]["intervals"][0]["signal_payload"] == 3.0

            async def listed():
                events = {e["eventId"]: e for e in (await gql(stack, EVENTS, {"p": program_id}))["data"]["events"]}
                return events if {today_id, tomorrow_id} <= set(events) else None
            events = await eventually(listed, 20, message="occurrences in GraphQL")
            assert (events[today_id]["status"], events[today_id]["modificationNumber"]) == ("active", 0)
            assert [i["payload"] for i in events[today_id]["intervals"]] == [2.0]
            assert events[tomorrow_id]["modificationNumber"] == 1
            assert datetime.fromisoformat(events[tomorrow_id]["startAt"]) == tomorrow_start
            assert events[tomorrow_id]["marketContext"] == market_context
            assert events[tomorrow_id]["targets"]["venIds"] == [client.ven_id]
            assert not seen(today_id, modification_number=1)
            await eventually(lambda: tap.messages(stack.subjects.event(tomorrow_id, "modified")), 10,
                             message="modified fact")
            # One modified fact (core NATS may repeat a fact with its id; JetStream keeps it once).
            assert len({f["id"] for f in tap.messages(stack.subjects.event(tomorrow_id, "modified"))}) == 1
            assert not tap.messages(stack.subjects.event(today_id, "modified"))
    finally:
        await gql(stack, DELETE, {"id": program_id})  # cancels tomorrow's; today's active one stays
        await client.stop()
