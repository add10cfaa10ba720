"""eventPerformance: each VEN's baseline (the same UTC hours on its 10 most recent non-event
weekdays) against its measured load during the event, and the shed, in kW — over readings and
events as telemetry stores them."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared import kv_keys, rollups
from adrstack.shared.messages import GroupRecord
from adrstack.shared.tables import DrEventRow, ReportDescriptionRow, Ven

from .helpers import gql

START = datetime(2026, 10, 15, 16, 0, tzinfo=timezone.utc)  # a Thursday, in the past
QUERY = """query($id: String!) { eventPerformance(eventId: $id) { eventId method windowStart windowEnd
  baselineKw measuredKw shedKw vens { venId baselineKw measuredKw shedKw baselineDays } } }"""


def event_row(event_id: str, start: datetime, targets: dict, status: str = "completed",
              modified_at: datetime | None = None) -> DrEventRow:
    return DrEventRow(event_id=event_id, modification_number=0, status=status, signal_name="SIMPLE",
                      signal_type="level", start_at=start, end_at=start + timedelta(hours=1),
                      intervals=[{"duration": "PT1H", "payload": 2}], targets={"ven_ids": [], **targets},
                      market_context="http://m", response_required="always", created_at=start - timedelta(days=1),
                      modified_at=modified_at or start, snapshot={})


async def readings(engine, ven_id: str, day: date, watts: float, r_id: str = "power") -> None:
    """Two readings in the 16:00-17:00 UTC window of ``day``, and one outside it that must not count."""
    async with engine.begin() as conn:
        for minute, value in ((0, watts), (30, watts), (-30, 999_999.0)):
            at = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=16, minutes=minute)
            await conn.execute(text(
                "INSERT INTO readings (ven_id, report_specifier_id, r_id, resource_id, measurement, unit, at, value, "
                "received_at) VALUES (:v, 'usage', :r, 'meter-1', 'RealPower', 'W', :at, :value, :at)"),
                {"v": ven_id, "r": r_id, "at": at, "value": value})


@pytest.fixture
async def fleet(engine, nc, api_settings):
    async with AsyncSession(engine) as s:
        for ven_id in ("ven-a", "ven-b", "ven-quiet"):
            s.add(Ven(ven_id=ven_id, ven_name=f"b-{ven_id}", registration_id=f"r-{ven_id}", registered_at=START,
                      updated_at=START))
            s.add(ReportDescriptionRow(ven_id=ven_id, report_specifier_id="usage", r_id="power",
                                       report_name="TELEMETRY_USAGE", resource_id="meter-1", measurement="RealPower",
                                       unit="W", registered_at=START))
        # ven-b has a second meter in kW: its load is the sum of both.
        s.add(ReportDescriptionRow(ven_id="ven-b", report_specifier_id="usage", r_id="power-2",
                                   report_name="TELEMETRY_USAGE", resource_id="meter-2", measurement="RealPower",
                                   unit="W", scale="k", registered_at=START))
        # The event: ven-a directly, ven-b and ven-quiet through the group "north".
        s.add(event_row("ev-perf", START, {"ven_ids": ["ven-a"], "group_ids": ["north"]}))
        # An earlier event that ran on Tuesday 10-13 for ven-a: not a baseline day for ven-a.
        s.add(event_row("ev-earlier", START - timedelta(days=2), {"ven_ids": ["ven-a"]}))
        # One cancelled before it started on Monday 10-12: that day still counts.
        s.add(event_row("ev-called-off", START - timedelta(days=3), {"ven_ids": ["ven-a"]}, status="cancelled",
                        modified_at=START - timedelta(days=4)))
        await s.commit()
    kv = await nc.jetstream().key_value(api_settings.groups_bucket)
    await kv.put(kv_keys.group_key("north"), GroupRecord(group_id="north", ven_ids=["ven-b", "ven-quiet"]).to_bytes())
    day = START.date()
    weekdays = [d for d in (day - timedelta(days=n) for n in range(1, 31)) if d.weekday() < 5]
    for n, d in enumerate(weekdays[:12]):
        # ven-a: 10 kW on normal days (the 11th and 12th weekdays back are older than the 10 used),
        # 2 kW on its event day; ven-b 3 kW + 1 kW.
        await readings(engine, "ven-a", d, 2_000.0 if d == date(2026, 10, 13) else (10_000.0 if n < 11 else 50_000.0))
        await readings(engine, "ven-b", d, 3_000.0)
        await readings(engine, "ven-b", d, 1.0, r_id="power-2")
    for d in (date(2026, 10, 10), date(2026, 10, 11)):  # a weekend: never a baseline day
        await readings(engine, "ven-a", d, 70_000.0)
    await readings(engine, "ven-a", day, 6_000.0)  # during the event: 4 kW shed
    await readings(engine, "ven-b", day, 3_500.0)  # 0.5 kW more on meter 1
    await readings(engine, "ven-b", day, 1.0, r_id="power-2")
    # Telemetry keeps the 15-minute rollups as it stores readings; readings inserted here are added
    # to them once, as the backfill does.
    async with engine.begin() as conn:
        await conn.execute(text(rollups.backfill_sql()))
    return weekdays


async def test_each_ven_against_its_baseline_and_the_sum(client, fleet):
    data = await gql(client, QUERY, {"id": "ev-perf"})
    assert "errors" not in data, data
    perf = data["data"]["eventPerformance"]
    assert datetime.fromisoformat(perf["windowStart"]) == START
    assert datetime.fromisoformat(perf["windowEnd"]) == START + timedelta(hours=1)
    by_ven = {v["venId"]: v for v in perf["vens"]}
    assert set(by_ven) == {"ven-a", "ven-b", "ven-quiet"}
    a = by_ven["ven-a"]
    assert a["baselineKw"] == pytest.approx(10.0) and a["measuredKw"] == pytest.approx(6.0)
    assert a["shedKw"] == pytest.approx(4.0)
    days_a = [date.fromisoformat(d) for d in a["baselineDays"]]
    assert len(days_a) == 10 and date(2026, 10, 13) not in days_a and date(2026, 10, 12) in days_a
    assert all(d.weekday() < 5 for d in days_a) and days_a == sorted(days_a, reverse=True)
    b = by_ven["ven-b"]
    assert b["baselineKw"] == pytest.approx(4.0) and b["measuredKw"] == pytest.approx(4.5)
    assert b["shedKw"] == pytest.approx(-0.5) and date(2026, 10, 13) in [date.fromisoformat(d) for d in b["baselineDays"]]
    quiet = by_ven["ven-quiet"]
    assert quiet == {"venId": "ven-quiet", "baselineKw": None, "measuredKw": None, "shedKw": None, "baselineDays": []}
    assert perf["baselineKw"] == pytest.approx(14.0) and perf["measuredKw"] == pytest.approx(10.5)
    assert perf["shedKw"] == pytest.approx(3.5)
    assert "10 most recent non-event weekdays" in perf["method"]


async def test_an_event_not_run_yet_or_unknown(client, engine):
    async with AsyncSession(engine) as s:
        s.add(event_row("ev-future", datetime(2099, 1, 1, tzinfo=timezone.utc), {"ven_ids": ["ven-x"]}, status="far"))
        await s.commit()
    perf = (await gql(client, QUERY, {"id": "ev-future"}))["data"]["eventPerformance"]
    assert perf["windowStart"] is None and perf["shedKw"] is None
    assert perf["vens"] == [{"venId": "ven-x", "baselineKw": None, "measuredKw": None, "shedKw": None,
                             "baselineDays": []}]
    assert (await gql(client, QUERY, {"id": "ev-none"}))["data"]["eventPerformance"] is None
    bad = await gql(client, QUERY, {"id": "bad.id"})
    assert bad["errors"][0]["extensions"]["field"] == "eventId"


async def test_a_window_off_the_quarter_hours_reads_its_edges_from_the_readings(client, engine, fleet):
    # 16:05-16:50: the rollups give 16:15-16:45, the readings the edges (16:07 and 16:47 here).
    start = START + timedelta(minutes=5)
    async with AsyncSession(engine) as s:
        row = event_row("ev-edge", start, {"ven_ids": ["ven-a"]})
        row.end_at = start + timedelta(minutes=45)
        s.add(row)
        await s.commit()
    async with engine.begin() as conn:
        for minute in (7, 47):
            at = START + timedelta(minutes=minute)
            await conn.execute(text(
                "INSERT INTO readings (ven_id, report_specifier_id, r_id, resource_id, measurement, unit, at, value, "
                "received_at) VALUES ('ven-a', 'usage', 'power', 'meter-1', 'RealPower', 'W', :at, 9000, :at)"),
                {"at": at})
            # Just this reading: the rollup already counts the others.
            await conn.execute(text(rollups.backfill_sql(since=at, until=at + timedelta(seconds=1))))
    perf = (await gql(client, QUERY, {"id": "ev-edge"}))["data"]["eventPerformance"]
    a = {v["venId"]: v for v in perf["vens"]}["ven-a"]
    # Measured: 16:07 (9 kW, an edge), 16:30 (6 kW, a rollup), 16:47 (9 kW, an edge); not 16:00.
    assert a["measuredKw"] == pytest.approx(8.0)
    # Baseline: each weekday's 16:30 reading only (16:00 is before 16:05).
    assert a["baselineKw"] == pytest.approx(10.0) and a["shedKw"] == pytest.approx(2.0)
