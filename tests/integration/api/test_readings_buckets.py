"""readings: one row per time bucket for a VEN (per resource and rID), or over a group, a program or
every VEN; paged by cursor; an unknown VEN, group or program is NOT_FOUND, not an empty list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared import kv_keys
from adrstack.shared.messages import GroupRecord
from adrstack.shared.programs import ProgramRecord, ProgramSchedule
from adrstack.shared.rollups import backfill_sql
from adrstack.shared.tables import Ven

from .helpers import gql

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)
Q = """query($ven: String, $group: String, $program: String, $since: DateTime, $until: DateTime, $bucket: String,
  $limit: Int, $after: String) { readings(venId: $ven, groupId: $group, program: $program, since: $since,
  until: $until, bucket: $bucket, limit: $limit, after: $after) {
  venId resourceId rId at value bucket min max sum count total series cursor } }"""


@pytest.fixture
async def fleet(engine, nc, api_settings):
    """ven-a: 1 kW then 3 kW every minute for an hour (meter-1), plus a pv rID; ven-b 2 kW; ven-c 10 kW
    (not in the group)."""
    async with AsyncSession(engine) as s:
        for ven_id in ("ven-a", "ven-b", "ven-c"):
            s.add(Ven(ven_id=ven_id, ven_name=f"b-{ven_id}", registration_id=f"r-{ven_id}", registered_at=T0,
                      updated_at=T0))
        await s.commit()
    rows = []
    for minute in range(60):
        at = T0 + timedelta(minutes=minute)
        rows.append(("ven-a", "load", "meter-1", at, 1000.0 if minute < 30 else 3000.0))
        rows.append(("ven-a", "pv", "pv-1", at, -500.0))
        rows.append(("ven-b", "load", "meter-9", at, 2000.0))
        rows.append(("ven-c", "load", "meter-7", at, 10000.0))
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO readings (ven_id, report_specifier_id, r_id, resource_id, measurement, unit, at, value, "
            "received_at) VALUES (:v, 'usage', :r, :res, 'RealPower', 'W', :at, :value, :at)"),
            [{"v": v, "r": r, "res": res, "at": at, "value": value} for v, r, res, at, value in rows])
        # Written around telemetry: their rollups too, as the migration adds stored readings.
        await conn.execute(text(backfill_sql()))
    js = nc.jetstream()
    await (await js.key_value(api_settings.groups_bucket)).put(
        kv_keys.group_key("north"), GroupRecord(group_id="north", ven_ids=["ven-a", "ven-b"]).to_bytes())
    await (await js.key_value(api_settings.programs_bucket)).put(kv_keys.program_key("peak"), ProgramRecord(
        program_id="peak", market_context="http://mc/peak", ven_ids=["ven-b"],
        schedule=ProgramSchedule(time_zone="UTC")).to_bytes())


WINDOW = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}


async def rows(client, **variables):
    data = await gql(client, Q, {**WINDOW, **variables})
    assert "errors" not in data, data
    return data["data"]["readings"]


async def test_one_ven_per_resource_and_rid_in_buckets(client, fleet):
    got = await rows(client, ven="ven-a", bucket="PT15M")
    assert [(r["at"], r["rId"]) for r in got][:2] == [((T0 + timedelta(minutes=45)).isoformat(), "load"),
                                                     ((T0 + timedelta(minutes=45)).isoformat(), "pv")]
    assert len(got) == 8  # 4 buckets x 2 rIDs
    by = {(r["at"], r["rId"]): r for r in got}
    second = by[((T0 + timedelta(minutes=15)).isoformat(), "load")]
    assert second == {"venId": "ven-a", "resourceId": "meter-1", "rId": "load",
                      "at": (T0 + timedelta(minutes=15)).isoformat(), "value": 1000.0, "bucket": "PT15M",
                      "min": 1000.0, "max": 1000.0, "sum": 15000.0, "count": 15, "total": 1000.0, "series": 1,
                      "cursor": second["cursor"]}
    assert by[((T0 + timedelta(minutes=30)).isoformat(), "load")]["value"] == 3000.0
    hour = await rows(client, ven="ven-a", bucket="PT1H")
    load = next(r for r in hour if r["rId"] == "load")
    assert (load["value"], load["min"], load["max"], load["count"]) == (2000.0, 1000.0, 3000.0, 60)


async def test_over_a_group_a_program_or_everyone(client, fleet):
    [group] = await rows(client, group="north", bucket="PT1H")
    # ven-a's load (2 kW mean) and pv (-0.5 kW) and ven-b's 2 kW: three series.
    assert group["venId"] is None and group["series"] == 3 and group["count"] == 180
    assert group["total"] == pytest.approx(3500.0) and group["min"] == -500.0 and group["max"] == 3000.0
    [program] = await rows(client, program="peak", bucket="P1D")
    assert program["total"] == pytest.approx(2000.0) and program["at"] == T0.replace(hour=0).isoformat()
    [everyone] = await rows(client, bucket="PT1H")
    assert everyone["series"] == 4 and everyone["total"] == pytest.approx(13500.0)


async def test_pages_by_cursor_raw_and_bucketed(client, fleet):
    seen, after = [], None
    while True:
        page = await rows(client, ven="ven-a", bucket="PT15M", limit=3, after=after)
        if not page:
            break
        seen += [(r["at"], r["rId"]) for r in page]
        after = page[-1]["cursor"]
    assert len(seen) == 8 and len(set(seen)) == 8
    raw, after = [], None
    for _ in range(50):
        page = await rows(client, group="north", limit=50, after=after)
        if not page:
            break
        raw += [(r["venId"], r["rId"], r["at"]) for r in page]
        after = page[-1]["cursor"]
    assert len(raw) == 180 and len(set(raw)) == 180
    assert [r[2] for r in raw] == sorted((r[2] for r in raw), reverse=True)


@pytest.mark.parametrize("variables, code, field", [
    ({"ven": "ven-ghost"}, "NOT_FOUND", "venId"),
    ({"group": "south"}, "NOT_FOUND", "groupId"),
    ({"program": "nope"}, "NOT_FOUND", "program"),
    ({"ven": "ven-a", "group": "north"}, "INVALID", "groupId"),
    ({"ven": "ven-a", "bucket": "PT7M"}, "INVALID", "bucket"),
    ({"ven": "ven-a", "bucket": "PT1H", "since": None}, "INVALID", "since"),
    ({"ven": "ven-a", "after": "not-a-cursor"}, "INVALID", "after"),
    ({"ven": "ven-a", "since": (T0 + timedelta(hours=2)).isoformat()}, "INVALID", "until"),
    ({"group": "north", "since": None}, "INVALID", "since"),  # raw rows of several VENs need a window
    ({"since": (T0 - timedelta(days=2)).isoformat()}, "INVALID", "since"),
])
async def test_unknown_scopes_and_bad_arguments(client, fleet, variables, code, field):
    data = await gql(client, Q, {**WINDOW, **variables})
    (error,) = data["errors"]
    assert error["extensions"] == {"code": code, "field": field}, error
