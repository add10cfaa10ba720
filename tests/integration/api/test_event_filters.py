"""events(status, since, until, venId, first, after): filters and pages over what telemetry stored;
a plain list, so clients of events(limit) keep working."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared.tables import DrEventRow

from .helpers import gql

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)


def row(event_id: str, status: str, start_hours: float, created_minutes: int, vens: list[str]) -> DrEventRow:
    start = T0 + timedelta(hours=start_hours)
    return DrEventRow(event_id=event_id, modification_number=0, status=status, signal_name="SIMPLE",
                      signal_type="level", start_at=start, end_at=start + timedelta(hours=1),
                      intervals=[{"duration": "PT1H", "payload": 1}], targets={"ven_ids": vens},
                      market_context="http://m/ctx", response_required="always",
                      created_at=T0 + timedelta(minutes=created_minutes), modified_at=T0, snapshot={})


@pytest.fixture
async def events(engine):
    async with AsyncSession(engine) as s:
        s.add_all([row("ev-a", "completed", -5, 1, ["ven-1"]), row("ev-b", "active", 0, 2, ["ven-1", "ven-2"]),
                   row("ev-c", "far", 3, 3, ["ven-2"]), row("ev-d", "cancelled", 6, 4, ["ven-3"]),
                   row("prg-peak-20300301", "far", 8, 0, ["ven-1"]), row("prg-peak_x-20300301", "far", 8, 0, ["ven-1"])])
        await s.commit()


async def ids(client, args: str = "", variables: dict | None = None) -> list[str]:
    declared = "($since: DateTime, $until: DateTime)" if variables else ""
    data = await gql(client, f"query{declared} {{ events{args} {{ eventId }} }}", variables or {})
    assert "errors" not in data, data
    return [e["eventId"] for e in data["data"]["events"]]


async def test_filters(client, events):
    assert await ids(client) == ["ev-d", "ev-c", "ev-b", "ev-a", "prg-peak-20300301", "prg-peak_x-20300301"]
    assert await ids(client, '(program: "peak")') == ["prg-peak-20300301"]
    assert await ids(client, '(program: "peak_x")') == ["prg-peak_x-20300301"]
    assert await ids(client, '(status: ["far", "active"])') == ["ev-c", "ev-b", "prg-peak-20300301",
                                                                "prg-peak_x-20300301"]
    assert await ids(client, '(venId: "ven-2")') == ["ev-c", "ev-b"]
    assert await ids(client, '(venId: "ven-1", status: ["completed"])') == ["ev-a"]
    window = {"since": (T0 + timedelta(minutes=30)).isoformat(), "until": (T0 + timedelta(hours=4)).isoformat()}
    assert await ids(client, "(since: $since, until: $until)", window) == ["ev-c", "ev-b"]


async def test_an_open_ended_event_overlaps_every_window_after_its_start(client, engine):
    """Rule 47: an open-ended event (no end) is in every since/until window from its start on."""
    open_ended = row("ev-open", "active", 0, 5, ["ven-1"])
    open_ended.end_at = None
    open_ended.intervals = [{"duration": "PT0S", "payload": 1}]
    async with AsyncSession(engine) as s:
        s.add_all([open_ended, row("ev-over", "completed", -5, 1, ["ven-1"])])
        await s.commit()
    later = {"since": (T0 + timedelta(days=400)).isoformat(), "until": (T0 + timedelta(days=401)).isoformat()}
    assert await ids(client, "(since: $since, until: $until)", later) == ["ev-open"]
    before = {"since": (T0 - timedelta(days=2)).isoformat(), "until": (T0 - timedelta(days=1)).isoformat()}
    assert await ids(client, "(since: $since, until: $until)", before) == []
    data = await gql(client, '{ event(eventId: "ev-open") { endAt intervals { duration } } }')
    assert data["data"]["event"] == {"endAt": None, "intervals": [{"duration": "PT0S"}]}


async def test_pages(client, events):
    first = await ids(client, "(first: 2)")
    assert first == ["ev-d", "ev-c"]
    assert await ids(client, f'(first: 2, after: "{first[-1]}")') == ["ev-b", "ev-a"]
    assert await ids(client, '(first: 2, after: "ev-a")') == ["prg-peak-20300301", "prg-peak_x-20300301"]


@pytest.mark.parametrize("args, field", [
    ('(status: ["soon"])', "status"),
    ('(after: "no-such-event")', "after"),
    ("(first: 0)", "first"),
    ("(first: 2, limit: 2)", "first"),
    ('(venId: "bad id")', "venId"),
])
async def test_bad_arguments_name_their_field(client, events, args, field):
    data = await gql(client, f"{{ events{args} {{ eventId }} }}")
    assert data["errors"][0]["extensions"]["code"] == "INVALID"
    assert data["errors"][0]["extensions"]["field"] == field


async def test_a_programs_revived_occurrences_are_its_events_too(client, engine):
    """An occurrence brought back after its day was excluded is prg-<program>-<day>r<n>."""
    async with AsyncSession(engine) as s:
        s.add_all([row("prg-peak-20300302", "cancelled", 30, 1, ["ven-1"]),
                   row("prg-peak-20300302r1", "far", 30, 2, ["ven-1"]),
                   row("prg-peak-20300302r1-20300303", "far", 54, 3, ["ven-1"])])  # program "peak-20300302r1"
        await s.commit()
    assert await ids(client, '(program: "peak")') == ["prg-peak-20300302r1", "prg-peak-20300302"]
    assert await ids(client, '(program: "peak-20300302r1")') == ["prg-peak-20300302r1-20300303"]
