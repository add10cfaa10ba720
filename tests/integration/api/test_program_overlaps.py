"""2.0b rule 18 (A_E3_0530) through GraphQL against a real scheduler replica: createProgram and
updateProgram set refuseOverlaps (shown on Program); an overlapping createEvent or modifyEvent in the
program's market context is a CONFLICT on startAt and stores nothing; turning the option off lets
events overlap again."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adrstack.scheduler.service import Scheduler
from adrstack.scheduler.settings import SchedulerSettings
from adrstack.shared import kv_keys
from adrstack.shared.jetstream import ensure_kv
from adrstack.shared.messages import VenRecord

from ...helpers import eventually
from .helpers import gql
from .test_programs import CREATE, UPDATE, error, new_program

M = "http://utility.example/peak"
BASE = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(microsecond=0)
EVENT = """mutation($input: CreateEventInput!) { createEvent(input: $input) { eventId marketContext } }"""
NO_WINDOWS = {"timeZone": "UTC", "rules": []}  # no occurrences of its own in the way
MODIFY = """mutation($input: ModifyEventInput!) { modifyEvent(input: $input) { eventId modificationNumber } }"""


@pytest.fixture
async def scheduler(isolated_settings, nc, known):  # noqa: F811
    vens = await ensure_kv(nc.jetstream(), isolated_settings.vens_bucket)
    for ven_id in ("ven-a", "ven-b"):
        record = VenRecord(ven_id=ven_id, ven_name=f"b-{ven_id}", registration_id=f"r-{ven_id}",
                           registered_at=datetime.now(timezone.utc))
        await vens.put(kv_keys.ven_key(ven_id), record.model_dump_json().encode())
    replica = Scheduler(SchedulerSettings(**isolated_settings.model_dump()))
    await replica.start()
    yield replica
    await replica.stop()


def event(event_id: str, start_minutes: int, minutes: int = 60, **extra) -> dict:
    return {"input": {"eventId": event_id, "venIds": ["ven-a"], "marketContext": M,
                      "startAt": (BASE + timedelta(minutes=start_minutes)).isoformat(),
                      "intervals": [{"duration": f"PT{minutes}M", "payload": 1}], **extra}}


async def stored_event_ids(nc, api_settings) -> list[str]:
    kv = await nc.jetstream().key_value(api_settings.events_bucket)
    return sorted(k.removeprefix("event.") for k in await kv.keys() if not k.startswith("event.prg-"))


async def test_overlapping_events_are_refused_on_start_at(client, scheduler, nc, api_settings):
    data = await gql(client, CREATE.replace("updatedAt", "updatedAt refuseOverlaps"),
                     {"input": new_program(refuseOverlaps=True, schedule=NO_WINDOWS)})
    assert data["data"]["createProgram"]["refuseOverlaps"] is True, data
    await eventually(lambda: (p := scheduler.planner.programs.get("peak")) is not None and p.refuse_overlaps,
                     message="the scheduler knows the program")

    assert "errors" not in await gql(client, EVENT, event("evt-a", 0))
    refused = await gql(client, EVENT, event("evt-b", 30))
    assert error(refused) == ("CONFLICT", "startAt"), refused
    assert "evt-a" in refused["errors"][0]["message"] and "A_E3_0530" in refused["errors"][0]["message"]
    assert await stored_event_ids(nc, api_settings) == ["evt-a"]
    # A single market-context target is the event's market context.
    targeted = await gql(client, EVENT, {"input": {**event("evt-t", 30)["input"], "marketContext": None,
                                                   "venIds": None, "marketContexts": [M]}})
    assert error(targeted) == ("CONFLICT", "startAt"), targeted

    assert "errors" not in await gql(client, EVENT, event("evt-c", 60))  # back to back
    moved = await gql(client, MODIFY, {"input": {"eventId": "evt-c", "startAt": (BASE + timedelta(minutes=30))
                                                 .isoformat()}})
    assert error(moved) == ("CONFLICT", "startAt"), moved
    assert await stored_event_ids(nc, api_settings) == ["evt-a", "evt-c"]

    data = await gql(client, UPDATE.replace("updatedAt", "updatedAt refuseOverlaps"),
                     {"input": {"programId": "peak", "refuseOverlaps": False}})
    assert data["data"]["updateProgram"]["refuseOverlaps"] is False, data
    await eventually(lambda: not scheduler.planner.programs.get("peak").refuse_overlaps, message="option off")
    assert "errors" not in await gql(client, EVENT, event("evt-b", 30))
