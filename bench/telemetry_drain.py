"""Telemetry drain benchmark: how fast telemetry stores a backlog of readings, exactly once.

    uv run python bench/telemetry_drain.py [--readings 200000] [--per-message 10] [--processes 1]

Publishes ``--readings`` readings as ReportData facts of ``--per-message`` readings each (every
reading a distinct point: VEN, report specifier, rID, timestamp; timestamps within the last day)
onto a stream of its own, then starts ``--processes`` telemetry processes
(``python -m adrstack.telemetry``, sharing one durable consumer as replicas do) and measures from
the moment all of them are ready to the moment every message is acked and every reading is a row.

Checks: rows == distinct points == readings published (lost = published - distinct points stored,
duplicated = rows - distinct points), and the sum of the values matches.

NATS: ``NATS_URL`` when set, else an embedded nats-server. Postgres: ``DATABASE_URL`` when set,
else an embedded one. Either way the run uses its own stream, durable and database (migrated with
``alembic upgrade head``), removed at the end unless ``--keep``.
Processes are not pinned: this is a throughput figure for the machine as it is, and it says how
much CPU telemetry used. The last line is the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import datetime, timedelta, timezone

import nats
import psycopg
from sqlalchemy.engine import make_url

from adrstack.runtime.embedded import drop_database
from adrstack.shared.jetstream import ensure_dead_letter_stream, ensure_stream
from adrstack.shared.messages import Reading, ReportData
from adrstack.shared.settings import CommonSettings
from stack import Bench, BenchError, cpu_seconds, run_benchmark, tail, unique_names, wait_log


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readings", type=int, default=200_000, help="readings to publish; default 200000")
    p.add_argument("--per-message", type=int, default=10, help="readings per ReportData; default 10")
    p.add_argument("--vens", type=int, default=100, help="VENs the readings come from; default 100")
    p.add_argument("--processes", type=int, default=1, help="telemetry processes sharing the durable; default 1")
    p.add_argument("--batch-size", type=int, default=0, help="ADRSTACK_BATCH_SIZE; default: telemetry's own")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds the drain may take; default 600")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs), the stream and the database")
    return p.parse_args(argv)


def facts(args, t0: datetime):
    """ReportData facts: message k is VEN k % vens, one point per rID, one minute per round."""
    messages = (args.readings + args.per_message - 1) // args.per_message
    left = args.readings
    for k in range(messages):
        ven = f"ven-{k % args.vens:05d}"
        at = t0 + timedelta(minutes=k // args.vens)
        n = min(args.per_message, left)
        left -= n
        yield ReportData(
            ven_id=ven, report_specifier_id="rs-telemetry",
            readings=[Reading(report_specifier_id="rs-telemetry", r_id=f"r{j}", at=at, value=float(k + j),
                              resource_id="meter", measurement="realPower", unit="W") for j in range(n)])


async def publish_all(js, settings: CommonSettings, args, t0: datetime) -> tuple[int, float]:
    """Publish every fact (acked by the stream); returns (messages, sum of values)."""
    subjects = settings.subjects
    total, count, window = 0.0, 0, []
    for fact in facts(args, t0):
        total += sum(r.value for r in fact.readings)
        count += 1
        window.append(js.publish(subjects.report_data(fact.ven_id), fact.to_bytes(),
                                 headers={"Nats-Msg-Id": fact.msg_id}, timeout=30))
        if len(window) >= 500:
            await asyncio.gather(*window)
            window = []
    if window:
        await asyncio.gather(*window)
    return count, total


async def run(args, bench: Bench) -> int:
    cpus = set(range(os.cpu_count() or 1))  # not pinned: every CPU (run_benchmark pinned this process)
    nats_url = os.environ.get("NATS_URL") or bench.start_nats(cpus)
    bench.start_postgres(cpus)
    names = unique_names()
    database_url = bench.new_database(names["database"])
    env = {k: v for k, v in names.items() if k.startswith("ADRSTACK_")}
    settings = CommonSettings(nats_url=nats_url, database_url=database_url,
                              subject_prefix=env["ADRSTACK_SUBJECT_PREFIX"], stream_name=env["ADRSTACK_STREAM_NAME"],
                              dead_letter_stream=env["ADRSTACK_DEAD_LETTER_STREAM"])
    print(f"nats {nats_url} ({'NATS_URL' if os.environ.get('NATS_URL') else 'embedded'}); postgres "
          f"{make_url(database_url).render_as_string(hide_password=True).rsplit('@', 1)[-1]} "
          f"({'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded'}); CPUs {sorted(cpus)}")
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    children = []
    try:
        await ensure_stream(js, settings)
        await ensure_dead_letter_stream(js, settings)
        t0 = (datetime.now(timezone.utc) - timedelta(days=1)).replace(second=0, microsecond=0)
        started = time.monotonic()
        messages, value_sum = await publish_all(js, settings, args, t0)
        print(f"published {args.readings:,} readings in {messages:,} ReportData facts "
              f"({args.per_message}/message, {args.vens} VENs) in {time.monotonic() - started:.1f} s")

        service_env = {**env, "NATS_URL": nats_url, "DATABASE_URL": database_url, "ADRSTACK_LOG_LEVEL": "INFO",
                       "ADRSTACK_DURABLE_NAME": "telemetry-drain"}
        if args.batch_size:
            service_env["ADRSTACK_BATCH_SIZE"] = str(args.batch_size)
        for i in range(args.processes):
            children.append(bench.service(f"telemetry-{i}", "adrstack.telemetry", service_env, cpus))
        # Nothing is fetched before a process says it is ready: the clock starts with the first.
        await asyncio.wait([asyncio.create_task(wait_log(bench, c, "telemetry ready")) for c in children],
                           return_when=asyncio.FIRST_COMPLETED)
        started = time.monotonic()
        cpu_before = cpu_seconds([c.pid for c in children])
        await drained(bench, children, js, settings.stream_name, database_url, args)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds([c.pid for c in children]) - cpu_before
        for child in children:
            bench.check_alive(child)

        async with await psycopg.AsyncConnection.connect(database_url) as db:
            cur = await db.execute(
                "select count(*), count(distinct (ven_id, report_specifier_id, r_id, at)), coalesce(sum(value), 0) "
                "from readings")
            stored, distinct, stored_sum = await cur.fetchone()
        lost = args.readings - distinct
        duplicated = stored - distinct
        rate = args.readings / elapsed
        print(f"drained in {elapsed:.2f} s by {args.processes} telemetry process(es): {rate:,.0f} readings/s, "
              f"{messages / elapsed:,.0f} messages/s; telemetry CPU {cpu:.1f} s "
              f"({cpu / args.readings * 1e6:.1f} us/reading)")
        print(f"rows {stored:,}, distinct points {distinct:,}, published {args.readings:,}; "
              f"value sum {'matches' if abs(stored_sum - value_sum) < 1e-6 * max(1.0, value_sum) else 'DIFFERS'}")
        for child in list(children):  # each process logs what it stored when it stops
            bench.stop(child)
            line = [ln for ln in child.log.read_text(errors="replace").splitlines() if "stopped after" in ln]
            print(f"  {child.name}: {line[-1].split(': ')[-1] if line else 'no summary in its log'}")
        bad = lost or duplicated or abs(stored_sum - value_sum) >= 1e-6 * max(1.0, value_sum)
        if bad:
            print(f"!!!!! lost {lost}, duplicated {duplicated}, value sum {stored_sum} vs {value_sum}")
        print(f"telemetry drain: {rate:,.0f} readings/s, lost {lost}, duplicated {duplicated}")
        return 1 if bad else 0
    finally:
        for child in children:
            bench.stop(child)  # already stopped unless the run failed
        await nc.close()
        if not args.keep:
            js_cleanup = await nats.connect(nats_url)
            for stream in (settings.stream_name, settings.dead_letter_stream):
                try:
                    await js_cleanup.jetstream().delete_stream(stream)
                except Exception:
                    pass
            await js_cleanup.close()
            url = make_url(database_url)
            drop_database(url.set(database="postgres").render_as_string(hide_password=False), url.database)


async def drained(bench: Bench, children, js, stream: str, database_url: str, args) -> int:
    """Wait until the durable has nothing pending or unacked and every reading is a row."""
    deadline = time.monotonic() + args.timeout
    settled_since = None
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        while time.monotonic() < deadline:
            for child in children:
                bench.check_alive(child)
            info = await js.consumer_info(stream, "telemetry-drain")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                settled_since = settled_since or time.monotonic()
                cur = await db.execute("select count(*) from readings")
                rows = (await cur.fetchone())[0]
                # Everything acked but rows missing: give it 2 s, then report the loss.
                if rows >= args.readings or time.monotonic() - settled_since > 2.0:
                    return rows
            else:
                settled_since = None
            await asyncio.sleep(0.05)
    raise BenchError(f"not drained within {args.timeout:g} s:\n{tail(children[0].log)}")


def main() -> int:
    return run_benchmark("telemetry drain", run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
