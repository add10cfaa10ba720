"""Upkeep of the readings partitions: days created ahead, rows waiting in the default partition
moved into their day, days older than the retention dropped whole, replicas running it at once."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import psycopg

from adrstack.runtime.migrate import check
from adrstack.shared.rollups import backfill_sql
from adrstack.telemetry.consumer import upkeep_partitions
from adrstack.telemetry.partitions import maintain, partition_name

NOW = datetime.now(timezone.utc)
TODAY = NOW.date()


def days(first: date, last: date) -> set[str]:
    return {partition_name(first + timedelta(days=i)) for i in range((last - first).days + 1)}


async def partitions(harness, parent: str = "readings") -> set[str]:
    rows = await harness.rows("select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
                              "where i.inhparent = %s::regclass", parent)
    return {name for (name,) in rows}


async def insert(harness, *points: tuple[str, datetime]) -> None:
    async with await psycopg.AsyncConnection.connect(harness.settings.database_url) as conn:
        for r_id, at in points:
            await conn.execute("insert into readings (ven_id, report_specifier_id, r_id, at, value, received_at) "
                               "values ('v', 'rs', %s, %s, 1.0, now())", (r_id, at))


async def placed(harness) -> dict[str, str]:
    return dict(await harness.rows("select r_id, tableoid::regclass::text from readings"))


async def upkeep(harness, now: datetime, retention_days: int | None = None, ahead: int = 7):
    async with await psycopg.AsyncConnection.connect(harness.settings.database_url, autocommit=True) as conn:
        return await maintain(conn, now, ahead, retention_days)


async def test_days_ahead_are_created_and_waiting_rows_move_into_their_day(harness):
    assert days(TODAY - timedelta(days=1), TODAY + timedelta(days=7)) <= await partitions(harness)  # 0007's
    later = NOW + timedelta(days=30)
    late_day = later.date() + timedelta(days=2)
    backlog_day = TODAY - timedelta(days=20)
    await insert(harness, ("ahead", datetime.combine(late_day, datetime.min.time(), timezone.utc)),
                 ("backlog", datetime.combine(backlog_day, datetime.min.time(), timezone.utc) + timedelta(hours=23)),
                 ("far", datetime(2999, 1, 1, tzinfo=timezone.utc)))
    assert set((await placed(harness)).values()) == {"readings_default"}

    done = await upkeep(harness, later)
    expected = days(later.date() - timedelta(days=1), later.date() + timedelta(days=7)) | {partition_name(backlog_day)}
    assert expected <= await partitions(harness)
    assert set(map(partition_name, done.created)) == expected - days(TODAY - timedelta(days=1),
                                                                      TODAY + timedelta(days=7))
    assert done.moved == 2 and not done.dropped
    assert await placed(harness) == {"ahead": partition_name(late_day), "backlog": partition_name(backlog_day),
                                     "far": "readings_default"}
    again = await upkeep(harness, later)
    assert not again.created and not again.moved
    check(harness.settings.database_url)  # alembic sees the partitioned parent only, as the model


async def test_days_older_than_the_retention_are_dropped_whole(harness):
    old = [TODAY - timedelta(days=n) for n in (40, 31, 30, 29)]
    await insert(harness, *[(f"d{(TODAY - d).days}", datetime.combine(d, datetime.min.time(), timezone.utc))
                            for d in old],
                 ("stray", datetime(1971, 1, 1, tzinfo=timezone.utc)), ("today", NOW))
    kept_for_ever = await upkeep(harness, NOW)  # no retention: old days get their partitions too
    assert {partition_name(d) for d in old} <= set(map(partition_name, kept_for_ever.created))
    assert partition_name(date(1971, 1, 1)) in await partitions(harness)

    done = await upkeep(harness, NOW, retention_days=30)
    # A day is dropped once it ends at least 30 days before now; the 30th day back ends later.
    assert set(done.dropped) == {TODAY - timedelta(days=40), TODAY - timedelta(days=31), date(1971, 1, 1)}
    assert set((await placed(harness))) == {"d30", "d29", "today"}
    names = await partitions(harness)
    assert partition_name(TODAY - timedelta(days=31)) not in names and partition_name(TODAY - timedelta(days=30)) in names


async def test_stray_rows_older_than_the_retention_leave_the_default_partition_and_none_get_a_partition(harness):
    await insert(harness, ("stray", datetime(1971, 1, 1, tzinfo=timezone.utc)),
                 ("far", datetime(2999, 1, 1, tzinfo=timezone.utc)))
    done = await upkeep(harness, NOW, retention_days=400)
    assert done.deleted == 1 and not done.created
    assert await placed(harness) == {"far": "readings_default"}


async def test_replicas_running_upkeep_at_once_create_each_day_once(harness):
    later = NOW + timedelta(days=100)
    results = await asyncio.gather(*[upkeep(harness, later) for _ in range(3)])
    created = [d for r in results for d in r.created]
    assert len(created) == len(set(created)) == 9
    assert days(later.date() - timedelta(days=1), later.date() + timedelta(days=7)) <= await partitions(harness)


async def test_a_busy_default_partition_leaves_the_move_to_the_next_run(harness):
    later = NOW + timedelta(days=60)
    await insert(harness, ("ahead", later))
    async with await psycopg.AsyncConnection.connect(harness.settings.database_url) as blocker:
        # A writer into the default partition, mid-transaction: the move waits at most 2 s for it.
        await blocker.execute("insert into readings (ven_id, report_specifier_id, r_id, at, value, received_at) "
                              "values ('v', 'rs', 'far', '2999-01-01T00:00:00Z', 1.0, now())")
        done = await asyncio.wait_for(upkeep(harness, later, ahead=0), 10)
        # Yesterday's partition is the first to wait; the rest is left to the next run.
        assert done.skipped == [f"create {partition_name(later.date() - timedelta(days=1))}"] and not done.moved
        await blocker.rollback()
    async with await psycopg.AsyncConnection.connect(harness.settings.database_url) as blocker:
        await blocker.execute("lock table readings_default in access exclusive mode")  # even reads wait
        done = await asyncio.wait_for(upkeep(harness, later, ahead=0), 10)
        assert done.skipped[0] == "look into the default partition" and not done.moved
        await blocker.rollback()
    done = await upkeep(harness, later, ahead=0)
    assert done.moved == 1 and await placed(harness) == {"ahead": partition_name(later.date())}


async def test_telemetry_upkeep_follows_its_settings(harness):
    await insert(harness, ("old", NOW - timedelta(days=3)), ("new", NOW))
    await upkeep(harness, NOW)  # the old day gets its partition
    settings = harness.settings_with(readings_retention_days=2, readings_partitions_ahead_days=10)
    await upkeep_partitions(settings)
    assert set(await placed(harness)) == {"new"}
    assert partition_name(TODAY + timedelta(days=10)) in await partitions(harness)


async def rollups_placed(harness) -> dict[str, str]:
    return dict(await harness.rows("select r_id, tableoid::regclass::text from readings_15m"))


async def backfill(harness) -> None:
    async with await psycopg.AsyncConnection.connect(harness.settings.database_url) as conn:
        await conn.execute(backfill_sql())


async def mirrored(harness) -> bool:
    """Whether the rollups have exactly the readings' partitions (day by day, and a default)."""
    rollups = {name.replace("readings_15m_", "readings_") for name in await partitions(harness, "readings_15m")}
    return rollups == await partitions(harness)


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), timezone.utc)


async def test_rollups_get_their_readings_days_and_go_with_them(harness):
    d40, d29 = TODAY - timedelta(days=40), TODAY - timedelta(days=29)
    await insert(harness, ("d40", midnight(d40) + timedelta(hours=23, minutes=59)), ("d29", midnight(d29)),
                 ("far", datetime(2999, 1, 1, tzinfo=timezone.utc)), ("today", NOW))
    await backfill(harness)
    assert await mirrored(harness)  # 0011 gave every readings day its rollup day
    assert await rollups_placed(harness) == {"d40": "readings_15m_default", "d29": "readings_15m_default",
                                             "far": "readings_15m_default", "today": f"readings_15m_p{TODAY:%Y%m%d}"}

    later = NOW + timedelta(days=20)
    await upkeep(harness, later)  # days ahead of `later`, and the two old days waiting in the defaults
    assert await mirrored(harness)
    assert await rollups_placed(harness) == {"d40": f"readings_15m_p{d40:%Y%m%d}", "d29": f"readings_15m_p{d29:%Y%m%d}",
                                             "far": "readings_15m_default", "today": f"readings_15m_p{TODAY:%Y%m%d}"}

    done = await upkeep(harness, NOW, retention_days=30)
    assert d40 in done.dropped and d29 not in done.dropped
    assert set(await rollups_placed(harness)) == set(await placed(harness)) == {"d29", "far", "today"}
    assert f"readings_15m_p{d40:%Y%m%d}" not in await partitions(harness, "readings_15m")


async def test_stray_rollups_older_than_the_retention_leave_the_default_partition(harness):
    await insert(harness, ("stray", datetime(1971, 1, 1, tzinfo=timezone.utc)),
                 ("far", datetime(2999, 1, 1, tzinfo=timezone.utc)))
    await backfill(harness)
    done = await upkeep(harness, NOW, retention_days=400)
    assert done.deleted == 1
    assert await rollups_placed(harness) == {"far": "readings_15m_default"}


async def test_the_status_history_older_than_the_retention_goes_and_the_latest_status_stays(harness):
    old, recent = NOW - timedelta(days=31), NOW - timedelta(days=29)
    async with await psycopg.AsyncConnection.connect(harness.settings.database_url) as conn:
        for at in (old, recent):
            await conn.execute("insert into ven_status (ven_id, report_specifier_id, r_id, at, online, manual_override, "
                               "load_control, received_at) values ('v', 'rs', 'st', %s, true, false, '{}', now())",
                               (at,))
        await conn.execute("insert into ven_status_latest (ven_id, resource_key, report_specifier_id, r_id, at, online, "
                           "manual_override, load_control, received_at) "
                           "values ('quiet', '', 'rs', 'st', %s, true, false, '{}', now())", (old,))
    kept = await upkeep(harness, NOW)
    assert kept.statuses_deleted == 0 and await harness.scalar("select count(*) from ven_status") == 2
    done = await upkeep(harness, NOW, retention_days=30)
    assert done.statuses_deleted == 1
    assert await harness.rows("select at from ven_status") == [(recent,)]
    assert await harness.scalar("select count(*) from ven_status_latest") == 1
