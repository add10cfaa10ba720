"""History queries over months of readings: how the API's bucketed readings queries scale with the
data.

    uv run python bench/history.py [--days 30] [--vens 10,30,100] [--every 10] [--runs 5]

A database of its own (on DATABASE_URL's server, else an embedded Postgres), migrated, with one
readings partition per day as telemetry keeps them; readings generated in Postgres
(``generate_series``: one power reading per VEN every --every seconds over --days days ending
yesterday), grown VEN by VEN to each size of --vens, and their 15-minute rollups built with the
one backfill the migration runs (``adrstack.shared.rollups.backfill_sql``; telemetry adds the same
rows as it merges). At each size, the median of --runs warm runs of the two queries the issue
names, run exactly as the API runs them (``adrstack.api.readings``: the rollups for the window's
whole 15 minutes, the readings for its edges):

* 15-minute buckets over one VEN's month (one VEN, per resource and rID);
* 1-hour buckets over all VENs for one day (aggregated over every VEN).

Both windows start and end 7 min 13 s off a bucket boundary, as a window ending ``now`` does, so
the edges read from ``readings`` are part of the time. Beside them, the same queries over the raw
readings alone (what the API ran before the rollups), for comparison.

1,000 VENs at 10 s for 30 days is about 260 million readings, too many for the 2-core development
machine: the default grows to 100 VENs (about 26 million) and reports how query time scales.
Last line: ``history: ...`` with both medians at the largest size and the target (< 200 ms each).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adrstack.api.readings import bucket_statement, rollup_window
from adrstack.runtime.embedded import drop_database
from adrstack.shared.db import async_engine
from adrstack.shared.rollups import backfill_sql
from adrstack.telemetry.partitions import maintain
from stack import SERVER_CPU, Bench, BenchError, run_benchmark, unique_names

TARGET_MS = 200.0
# Windows start and end this far inside a 15-minute bucket (as one ending now does).
OFF = timedelta(minutes=7, seconds=13)

GENERATE = """
INSERT INTO readings (ven_id, report_specifier_id, r_id, resource_id, measurement, unit, at, value, received_at)
SELECT 'ven-' || lpad(v::text, 5, '0'), 'usage', 'power', 'meter-1', 'RealPower', 'W', t,
       1000 + 400 * sin(extract(epoch from t) / 13751.0) + v, t
FROM generate_series(%(first)s::int, %(last)s::int) v,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 second',
                     make_interval(secs => %(every)s)) t
"""


def ven_name(v: int) -> str:
    return f"ven-{v:05d}"  # as GENERATE names them


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=30, help="days of history; default 30")
    p.add_argument("--vens", default="10,30,100", help="VEN counts to measure at, growing; default 10,30,100")
    p.add_argument("--every", type=int, default=10, help="seconds between a VEN's readings; default 10")
    p.add_argument("--runs", type=int, default=5, help="warm runs of each query per size; default 5")
    p.add_argument("--keep", action="store_true", help="keep the temp dir and the database")
    args = p.parse_args(argv)
    args.sizes = sorted({int(x) for x in args.vens.split(",") if x.strip()})
    if not args.sizes or args.sizes[0] < 1:
        p.error("--vens: one or more VEN counts, e.g. 10,30,100")
    return args


def params(vens: list[str] | None, since: datetime, until: datetime, secs: int) -> dict:
    """The API's parameters of a bucketed query (``adrstack.api.readings.query``)."""
    return {"vens": vens or [], "all": vens is None, "since": since, "until": until, "secs": secs,
            "limit": 10_000, "after_at": None, "k1": "", "k2": "", "k3": "", "k4": "", **rollup_window(since, until)}


async def timed(engine, sql: str, params: dict, runs: int) -> tuple[float, int]:
    """Median milliseconds of ``runs`` warm runs (after one cold), and the rows it answers."""
    samples, count = [], 0
    for i in range(runs + 1):
        async with engine.connect() as conn:
            started = time.perf_counter()
            count = len((await conn.execute(text(sql), params)).all())
            elapsed = (time.perf_counter() - started) * 1000
        if i:
            samples.append(elapsed)
    return statistics.median(samples), count


async def run(args, bench: Bench) -> int:
    bench.start_postgres({SERVER_CPU})
    # A name of its own: on a shared server (DATABASE_URL) a database left by another run would be reused.
    database = unique_names()["database"]
    database_url = bench.new_database(database)
    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    async with await psycopg.AsyncConnection.connect(plain, autocommit=True) as conn:
        await maintain(conn, start, ahead_days=args.days + 1, retention_days=None)
    engine = async_engine(database_url)
    results = []
    try:
        have = 0
        for size in args.sizes:
            started = time.monotonic()
            async with await psycopg.AsyncConnection.connect(plain, autocommit=True) as conn:
                for first in range(have + 1, size + 1, 5):  # five VENs per statement
                    last = min(first + 4, size)
                    await conn.execute(GENERATE, {"first": first, "last": last, "start": start,
                                                  "end": end, "every": args.every})
                    await conn.execute(backfill_sql(start, end, [ven_name(v) for v in range(first, last + 1)]))
                await conn.execute("analyze readings")
                await conn.execute("analyze readings_15m")
                rows = (await (await conn.execute("select count(*) from readings")).fetchone())[0]
                rolled = (await (await conn.execute("select count(*) from readings_15m")).fetchone())[0]
            have = size
            print(f"{size} VENs: {rows:,} readings, {rolled:,} rollups ({time.monotonic() - started:.0f} s to generate "
                  f"and roll up)", flush=True)
            month = params([ven_name(1)], start + OFF, end - OFF, 900)
            day = params(None, end - timedelta(days=1) + OFF, end - OFF, 3600)
            timings = {}
            for rolled_up in (True, False):
                month_ms, month_rows = await timed(engine, bucket_statement(True, rolled_up), month, args.runs)
                day_ms, day_rows = await timed(engine, bucket_statement(False, rolled_up), day, args.runs)
                if month_rows != args.days * 96 or day_rows != 24:
                    raise BenchError(f"unexpected answers: {month_rows} month buckets, {day_rows} day buckets")
                timings[rolled_up] = (month_ms, day_ms)
            (month_ms, day_ms), (raw_month_ms, raw_day_ms) = timings[True], timings[False]
            print(f"  15-min buckets of one VEN's {args.days} days: {month_ms:.1f} ms (raw readings only: "
                  f"{raw_month_ms:.1f} ms); 1-h buckets of all {size} VENs' day: {day_ms:.1f} ms (raw readings only: "
                  f"{raw_day_ms:.1f} ms)", flush=True)
            results.append((size, rows, month_ms, day_ms, raw_month_ms, raw_day_ms))
    finally:
        await engine.dispose()
        if not args.keep:  # an embedded server goes with its temp dir; a shared one keeps databases
            drop_database(make_url(plain).set(database="postgres").render_as_string(hide_password=False),
                          database)
    size, rows, month_ms, day_ms, raw_month_ms, raw_day_ms = results[-1]
    met = "met" if max(month_ms, day_ms) < TARGET_MS else "NOT met"
    scaling = ", ".join(f"{s} VENs {m:.0f}/{d:.0f} ms" for s, _, m, d, _, _ in results)
    print(f"history: 15-min buckets of one VEN's month {month_ms:.1f} ms, 1-h buckets of all VENs' day "
          f"{day_ms:.1f} ms at {size} VENs x {args.days} days ({rows:,} readings); target < {TARGET_MS:.0f} ms "
          f"each: {met}; by size (month/day): {scaling}; raw readings only at {size} VENs: "
          f"{raw_month_ms:.0f}/{raw_day_ms:.0f} ms")
    return 0


def main() -> int:
    return run_benchmark("history", run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
