"""Upkeep of the readings partitions: days created ahead, old days dropped whole.

Everything below holds for the 15-minute rollups too (``readings_15m``, partitioned by range on
``bucket``, ``readings_15m_pYYYYMMDD`` and ``readings_15m_default``): a rollup bucket lies in its
readings' day, so each day's two partitions are created, filled from their default and dropped
together, in one transaction, and the retention drops a day's rollups with its readings.

``readings`` is partitioned by range on ``at`` (migration 0007): one partition per UTC day,
``readings_pYYYYMMDD`` covering [day 00:00 UTC, next day 00:00 UTC), and ``readings_default`` for a
timestamp no day partition covers, so that no reading is ever refused for its time. Telemetry
keeps it so, at start and then every ``partition_upkeep_seconds``:

* a partition exists for yesterday .. today + ``partitions_ahead_days``, and for every day within
  the retention (or any past day, when readings are kept for ever) that has readings waiting in
  the default partition (e.g. a backlog older than the days created ahead); those rows are moved
  into their day's partition in the transaction that creates it;
* with ``readings_retention_days`` set, every day partition that ends at or before now minus the
  retention is dropped (``DROP TABLE``: no row-by-row delete, no bloat, no vacuum), and rows of
  the default partition older than that are deleted (it holds only stray timestamps).

Replicas may all run it: each change is its own short transaction under an advisory lock, with a
lock timeout, and re-checks what exists. A step that cannot get its lock is left to the next run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import psycopg
from psycopg import sql

from adrstack.shared import rollups

log = logging.getLogger(__name__)

PARENT = "readings"
DEFAULT = "readings_default"
# pg_advisory_xact_lock key shared by every telemetry replica (arbitrary: "adrspart").
LOCK_KEY = 0x61647273_70617274
LOCK_TIMEOUT = "2s"
COLUMNS = ("ven_id", "report_specifier_id", "r_id", "resource_id", "measurement", "unit", "at", "value",
           "received_at")


@dataclass(frozen=True)
class Family:
    """A table partitioned by UTC day on ``column``: its parent, default partition and columns."""

    parent: str
    default: str
    column: str
    columns: tuple[str, ...]

    def partition(self, day: date) -> str:
        return f"{self.parent}_p{day:%Y%m%d}"


READINGS = Family(PARENT, DEFAULT, "at", COLUMNS)
ROLLUPS = Family(rollups.TABLE, rollups.DEFAULT, "bucket", rollups.COLUMNS)
# Locked, filled and attached in this order, the order in which telemetry writes them (no deadlock).
FAMILIES = (READINGS, ROLLUPS)


@dataclass
class Upkeep:
    """What one run changed."""

    created: list[date] = field(default_factory=list)
    moved: int = 0  # rows moved out of the default partition into their day's
    dropped: list[date] = field(default_factory=list)
    deleted: int = 0  # stray rows of the default partition older than the retention
    statuses_deleted: int = 0  # TELEMETRY_STATUS history older than the retention
    skipped: list[str] = field(default_factory=list)  # steps left to the next run (lock busy)


def partition_name(day: date) -> str:
    return f"readings_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def retention_cutoff(now: datetime, retention_days: int | None) -> datetime | None:
    """Readings older than this may go (None: kept for ever)."""
    return None if retention_days is None else now - timedelta(days=retention_days)


async def day_partitions(conn: psycopg.AsyncConnection, family: Family = READINGS) -> dict[date, str]:
    cur = await conn.execute(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = %s::regclass", (family.parent,))
    days = {}
    name_of_day = re.compile(rf"^{re.escape(family.parent)}_p(\d{{8}})$")
    for (name,) in await cur.fetchall():
        m = name_of_day.match(name)
        if m:
            days[datetime.strptime(m.group(1), "%Y%m%d").date()] = name
    return days


async def waiting_days(conn: psycopg.AsyncConnection, cutoff: datetime | None, last: date) -> set[date]:
    """Days up to ``last`` (and not older than ``cutoff``) that have rows in the default partition."""
    cur = await conn.execute(
        sql.SQL("select distinct (at at time zone 'UTC')::date from {} where at < %s and at >= %s").format(
            sql.Identifier(DEFAULT)),
        (day_start(last + timedelta(days=1)), cutoff or datetime(1, 1, 1, tzinfo=timezone.utc)))
    return {d for (d,) in await cur.fetchall()}


async def maintain(conn: psycopg.AsyncConnection, now: datetime, ahead_days: int,
                   retention_days: int | None) -> Upkeep:
    """One upkeep run on an autocommit connection of its own (see the module doc)."""
    done = Upkeep()
    today = now.astimezone(timezone.utc).date()
    cutoff = retention_cutoff(now, retention_days)
    last = today + timedelta(days=ahead_days)
    # No statement of the upkeep waits long for a lock (nor holds up writers queued behind it).
    await conn.execute(f"set lock_timeout = '{LOCK_TIMEOUT}'")
    wanted = {today + timedelta(days=i) for i in range(-1, ahead_days + 1)}
    try:
        wanted |= await waiting_days(conn, cutoff, last)
    except psycopg.errors.LockNotAvailable:
        log.info("readings partitions: the default partition is busy; its rows move on the next run")
        done.skipped.append("look into the default partition")
    if cutoff is not None:  # never create a day that the retention would drop at once
        wanted = {d for d in wanted if day_start(d + timedelta(days=1)) > cutoff}
    existing = await day_partitions(conn)
    existing_rollups = await day_partitions(conn, ROLLUPS)
    complete = existing.keys() & existing_rollups.keys()
    for day in sorted(wanted - complete):
        # Every creation needs the default partition; once it is busy, the rest waits a run.
        if not await _step(conn, done, f"create {partition_name(day)}", _create, day, done):
            break
    if cutoff is not None:
        for day, name in sorted({**existing_rollups, **existing}.items()):
            if day_start(day + timedelta(days=1)) <= cutoff:
                await _step(conn, done, f"drop {name}", _drop, day, done)
        await _step(conn, done, "trim the default partition", _trim_default, cutoff, done)
        await _step(conn, done, "trim the status history", _trim_statuses, cutoff, done)
    return done


async def _trim_statuses(conn, cutoff: datetime, done: Upkeep) -> None:
    # A row per status point, a few per VEN and hour: a delete is cheap enough, unlike readings.
    # ven_status_latest keeps each VEN's newest status however old it is.
    cur = await conn.execute("delete from ven_status where at < %s", (cutoff,))
    done.statuses_deleted = cur.rowcount
    if cur.rowcount:
        log.info("ven_status: %d status point(s) older than the retention deleted", cur.rowcount)


async def _step(conn, done: Upkeep, what: str, fn, *args) -> bool:
    """Run ``fn`` in a transaction of its own; False when a lock was busy (left to the next run)."""
    try:
        async with conn.transaction():
            await conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            await fn(conn, *args)
        return True
    except psycopg.errors.LockNotAvailable:
        log.info("readings partitions: %s left to the next run (a lock is busy)", what)
        done.skipped.append(what)
        return False


async def _create(conn, day: date, done: Upkeep) -> None:
    made = False
    for family in FAMILIES:
        moved = await _create_one(conn, family, day)
        if moved is None:  # another replica made it first
            continue
        made = True
        if family is READINGS:
            done.moved += moved
        log.info("%s partition %s created%s", family.parent, family.partition(day),
                 f", {moved} row(s) moved from the default" if moved else "")
    if made:
        done.created.append(day)


async def _create_one(conn, family: Family, day: date) -> int | None:
    """Create ``family``'s partition of ``day`` with the rows of that day waiting in its default
    partition; the rows moved, None when it exists already."""
    name = family.partition(day)
    cur = await conn.execute("select to_regclass(%s)", (name,))
    if (await cur.fetchone())[0] is not None:
        return None
    lo, hi = day_start(day), day_start(day + timedelta(days=1))
    table, parent, default = sql.Identifier(name), sql.Identifier(family.parent), sql.Identifier(family.default)
    cols = sql.SQL(", ").join(map(sql.Identifier, family.columns))
    # Nothing may be written into the default partition while its rows of that day move out
    # (attaching would then fail); inserts of other days are not held up.
    await conn.execute(sql.SQL("lock table {} in share row exclusive mode").format(default))
    await conn.execute(sql.SQL("create table {} (like {} including defaults including constraints)").format(
        table, parent))
    cur = await conn.execute(
        sql.SQL("with moved as (delete from {default} where {col} >= %s and {col} < %s returning {cols}) "
                "insert into {table} ({cols}) select {cols} from moved").format(
                    default=default, col=sql.Identifier(family.column), cols=cols, table=table), (lo, hi))
    # Attaching takes SHARE UPDATE EXCLUSIVE on the parent: writers and readers go on meanwhile.
    await conn.execute(sql.SQL("alter table {} attach partition {} for values from ({}) to ({})").format(
        parent, table, sql.Literal(lo), sql.Literal(hi)))
    return cur.rowcount


async def _drop(conn, day: date, done: Upkeep) -> None:
    dropped = False
    for family in FAMILIES:
        name = family.partition(day)
        cur = await conn.execute("select to_regclass(%s)", (name,))
        if (await cur.fetchone())[0] is None:
            continue
        await conn.execute(sql.SQL("drop table {}").format(sql.Identifier(name)))
        dropped = True
        log.info("%s partition %s dropped (older than the retention)", family.parent, name)
    if dropped:
        done.dropped.append(day)


async def _trim_default(conn, cutoff: datetime, done: Upkeep) -> None:
    # A stray rollup bucket goes once it starts before the cutoff, though readings of it after the
    # cutoff stay: only stray timestamps are here, and a whole day's rollups go with its partition.
    for family in FAMILIES:
        cur = await conn.execute(sql.SQL("delete from {} where {} < %s").format(
            sql.Identifier(family.default), sql.Identifier(family.column)), (cutoff,))
        if family is READINGS:
            done.deleted += cur.rowcount
        if cur.rowcount:
            log.info("%s: %d row(s) older than the retention deleted from the default partition", family.parent,
                     cur.rowcount)
