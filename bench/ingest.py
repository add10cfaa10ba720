"""Report ingest benchmark: oadrUpdateReport through the adrstack gateway into Postgres, against a
plain openleadr VTN taking the same reports, in the same run.

    uv run python bench/ingest.py [--vens 200] [--intervals 10] [--seconds 10] [--connections 64]

adrstack (nats-server, gateway, telemetry, Postgres as processes): --vens VENs registered over HTTP,
each declaring one TELEMETRY_USAGE data point (oadrRegisterReport), then oadrUpdateReport with
--intervals intervals each (one reading per interval, every reading a new point), posted over
--connections keep-alive raw sockets:
  * closed loop (after a warm-up that is drained first): readings acknowledged to VENs per second
    (gateway-only: an oadrUpdatedReport with responseCode 200 is sent only once JetStream has the
    readings), and readings stored per second end to end: the readings of every report acknowledged
    in the window, divided by the time from the window's start until the last of them is a row in
    Postgres (drained);
  * open loop at --latency-load of that stored rate: report -> row latency, from each report's
    scheduled send time to its rows being visible in Postgres (polled every --poll-ms; a row seen
    late by the poller only makes the figure worse), and the answer latency of the gateway;
  * exactly once: rows in Postgres against readings acknowledged (lost), and report.data facts in
    the stream against reports acknowledged (duplicated).
plain openleadr: an OpenADRServer with the same VENs in its ven_lookup and an on_update_report that
only counts; the same closed loop; readings answered with oadrUpdatedReport per second (its own
count must agree).

Pinning: gateway + nats-server (and the plain VTN) on CPU 0, the load generator on CPU 1, telemetry
and Postgres where --backend-cpu says (default 1). The last line is the summary:
  ingest: <ratio>x plain openleadr (<stored>/s vs <plain>/s), p99 <x> ms, lost <n>, duplicated <n>
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Sequence

from openleadr import OpenADRClient
from openleadr.messaging import create_message

import rawload
from rawload import ClosedLoop, Messages, OpenLoop, Pool, describe, now, percentile
from stack import (HOST, LOADGEN_CPU, SERVER_CPU, Bench, BenchError, ForeignLoad, PlainVtn, cpu_seconds, gateway_env,
                   own_cpu_seconds, pick_port, run_benchmark, unique_names, wait_health, wait_log)

TARGET_STORED = 40_000.0
TARGET_RATIO = 4.5
TARGET_P99_MS = 1000.0
SPEC, R_ID = "usage-1", "power-1"
# Readings' timestamps: report k's interval i is at BASE + k * STRIDE + i seconds, so every reading of
# the run is a new point for its VEN and a row's `at` says which report it came from.
BASE = datetime(2001, 1, 1, tzinfo=timezone.utc)
BASE_EPOCH = int(BASE.timestamp())
STRIDE = 100  # >= --intervals


# --------------------------------------------------------------------------- messages


def _stamp(seconds: int) -> str:
    return (BASE + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ReportBodies:
    """oadrUpdateReport bodies exactly as openleadr's ``create_message`` renders them (checked once),
    built per request from a template: report ``k`` is VEN ``k % len(ven_ids)``'s, its intervals at
    BASE + k * STRIDE + i seconds."""

    def __init__(self, ven_ids: list[str], intervals: int, value: float = 1.5,
                 report_request_ids: dict[str, str] | None = None):
        """``report_request_ids``: each VEN's reportRequestID, the one the VTN issued it (rule 304)."""
        if intervals > STRIDE:
            raise BenchError(f"at most {STRIDE} intervals per report")
        self.ven_ids, self.intervals, self.value = ven_ids, intervals, value
        self.report_request_ids = report_request_ids or {}
        body = self._rendered("VENSENTINEL", "REQSENTINEL", "RRSENTINEL", 0).encode()
        first = f"<xcal:date-time>{_stamp(0)}</xcal:date-time>".encode()
        head, rest = body.split(b"<ei:interval>", 1)
        rest = b"<ei:interval>" + rest
        end = rest.rindex(b"</ei:interval>") + len(b"</ei:interval>")
        one_len = len(rest[:end]) // intervals
        one, tail = rest[:one_len], rest[end:]
        assert b"RRSENTINEL" in tail and b"VENSENTINEL" in tail, "reportRequestID and venID after the intervals"
        self._tails = {v: tail.replace(b"VENSENTINEL", v.encode())
                       .replace(b"RRSENTINEL", self.report_request_id(v).encode()) for v in ven_ids}
        self._head = head
        self._one = one.split(first)
        assert len(self._one) == 2, "interval template"
        self._check()

    def report_request_id(self, ven_id: str) -> str:
        return self.report_request_ids.get(ven_id, "rr-bench")

    def rendered(self, ven_id: str, request_id: str, k: int) -> str:
        return self._rendered(ven_id, request_id, self.report_request_id(ven_id), k)

    def _rendered(self, ven_id: str, request_id: str, report_request_id: str, k: int) -> str:
        return create_message("oadrUpdateReport", ven_id=ven_id, request_id=request_id, reports=[{
            "report_request_id": report_request_id, "report_specifier_id": SPEC, "report_name": "TELEMETRY_USAGE",
            "created_date_time": BASE,
            "intervals": [{"dtstart": BASE + timedelta(seconds=k * STRIDE + i),
                           "report_payload": {"r_id": R_ID, "value": self.value}} for i in range(self.intervals)]}])

    def body(self, k: int) -> bytes:
        ven_id = self.ven_ids[k % len(self.ven_ids)]
        a, b = self._one
        parts = [self._head.replace(b"REQSENTINEL", b"u-%d" % k)]
        for i in range(self.intervals):
            parts += (a, f"<xcal:date-time>{_stamp(k * STRIDE + i)}</xcal:date-time>".encode(), b)
        parts.append(self._tails[ven_id])
        return b"".join(parts)

    def _check(self) -> None:
        for k in (0, 7, 12345):
            ven_id = self.ven_ids[k % len(self.ven_ids)]
            assert self.body(k).decode() == self.rendered(ven_id, f"u-{k}", k), "template differs from openleadr"


class Requests(Sequence[bytes]):
    """Requests ``first``, ``first + 1``, ... built when sent (the index a driver asks for is relative)."""

    def __init__(self, messages: Messages, bodies: ReportBodies, first: int, count: int = 10**9):
        self.messages, self.bodies, self.first, self.count = messages, bodies, first, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> bytes:
        return self.messages.post("EiReport", self.bodies.body(self.first + i))


def register_report_body(ven_id: str, request_id: str) -> bytes:
    client = OpenADRClient(ven_name="bench", vtn_url="http://127.0.0.1:1/OpenADR2/Simple/2.0b")
    client.add_report(callback=lambda: 1.0, resource_id="meter-1", measurement="RealPower", unit="W",
                      report_specifier_id=SPEC, r_id=R_ID, sampling_rate=timedelta(seconds=1),
                      report_duration=timedelta(hours=1))
    return create_message("oadrRegisterReport", request_id=request_id, ven_id=ven_id, reports=client.reports,
                          report_request_id=0).encode()


def expect_updated(status: int, body: bytes, index: int) -> str | None:
    if status == 200 and b"oadrUpdatedReport" in body and rawload._OK_CODE in body:
        return None
    return describe(status, body)


_REPORT_REQUEST_ID = re.compile(rb"<ei:reportRequestID>([^<]+)</ei:reportRequestID>")


class Registered:
    """Checks report registrations and keeps the reportRequestID each answer carries: the VTN's
    request rides in its oadrRegisteredReport, and rule 304 refuses data for any other id."""

    def __init__(self):
        self.report_request_ids: dict[int, str] = {}

    def __call__(self, status: int, body: bytes, index: int) -> str | None:
        if status == 200 and b"oadrRegisteredReport" in body and rawload._OK_CODE in body:
            found = _REPORT_REQUEST_ID.findall(body)
            if len(found) != 1:
                return f"expected one report request in the oadrRegisteredReport, got {len(found)}"
            self.report_request_ids[index] = found[0].decode()
            return None
        return "report registration refused: " + describe(status, body)


class ScheduledOpenLoop(OpenLoop):
    """OpenLoop that remembers each request's scheduled send time (report -> row latency)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.scheduled: dict[int, float] = {}
        self.acked: set[int] = set()

    def _dispatch(self, scheduled: float, index: int) -> None:
        self.scheduled[index] = scheduled
        super()._dispatch(scheduled, index)

    def _on_done(self, conn, status, body, ctx) -> None:
        if status and self.check(status, body, ctx[1]) is None:
            self.acked.add(ctx[1])
        super()._on_done(conn, status, body, ctx)


# --------------------------------------------------------------------------- Postgres


class Rows:
    """Counts and watches the readings table (psycopg, autocommit)."""

    def __init__(self, db):
        self.db = db

    # Every reading's time is unique to its report and grows with the report number (BASE_EPOCH +
    # k * STRIDE + interval): a time is the watermark (the table has no id; its key is natural).
    async def max_epoch(self) -> int:
        cur = await self.db.execute("select coalesce(max(extract(epoch from at))::bigint, 0) from readings")
        return (await cur.fetchone())[0]

    async def count(self, above_epoch: int = 0) -> int:
        cur = await self.db.execute("select count(*) from readings where at > to_timestamp(%s)", (above_epoch,))
        return (await cur.fetchone())[0]

    async def count_distinct(self) -> tuple[int, int]:
        cur = await self.db.execute("select count(*), count(distinct (ven_id, report_specifier_id, r_id, at)) "
                                    "from readings")
        return tuple(await cur.fetchone())

    async def wait_for(self, expected: int, above_epoch: int, timeout: float, every: float = 0.1) -> tuple[int, float]:
        """Until ``expected`` rows after ``above_epoch`` (or ``timeout``): (rows, when the count was reached)."""
        deadline = now() + timeout
        while True:
            rows = await self.count(above_epoch)
            t = now()
            if rows >= expected or t >= deadline:
                return rows, t
            await asyncio.sleep(every)

    async def watch_reports(self, first_report: int, seen: dict[int, float], stop: asyncio.Event,
                            every: float, lag: float = 0.5, floor: int = 0) -> None:
        """Record when report k's first reading (interval 0) is first visible. Rows are read by time;
        times committed out of order would be missed, so each poll reads again the times of the last
        ``lag`` seconds (a row seen late only makes the latency worse)."""
        history: collections.deque[tuple[float, int]] = collections.deque()
        top = floor
        while True:
            cur = await self.db.execute(
                "select extract(epoch from at)::bigint from readings where at > to_timestamp(%s) "
                "and (extract(epoch from at)::bigint - %s) %% %s = 0", (floor, BASE_EPOCH, STRIDE))
            t = now()
            for (epoch,) in await cur.fetchall():
                k = (epoch - BASE_EPOCH) // STRIDE - first_report
                if k >= 0 and k not in seen:
                    seen[k] = t
                top = max(top, epoch)
            history.append((t, top))
            while history and t - history[0][0] > lag:
                floor = history.popleft()[1]
            if stop.is_set():
                return
            await asyncio.sleep(every)


async def stream_report_facts(nats_url: str, stream: str, prefix: str) -> int:
    """report.data messages the stream holds."""
    import nats

    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(stream, subjects_filter=f"{prefix}.ven.*.report.data")
        return sum((info.state.subjects or {}).values())
    finally:
        await nc.close()


# --------------------------------------------------------------------------- results


@dataclass
class Closed:
    name: str
    reports: int = 0  # acknowledged in the window
    readings: int = 0
    errors: int = 0
    wall: float = 0.0
    server_cpu: float = 0.0
    loadgen_cpu: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    foreign: str = ""
    error_report: str = ""

    @property
    def rate(self) -> float:
        return self.readings / self.wall if self.wall else 0.0


@dataclass
class StackResult:
    closed: Closed = field(default_factory=lambda: Closed("adrstack"))
    stored_rate: float = 0.0  # end to end
    drain_wall: float = 0.0
    drained: bool = False
    latency_rate: float = 0.0  # reports/s
    latency_reports: int = 0
    row_p50_ms: float = float("nan")
    row_p99_ms: float = float("nan")
    answer_p99_ms: float = float("nan")
    not_seen: int = 0
    latency_errors: int = 0
    acked_readings: int = 0  # every phase
    rows: int = 0
    distinct_rows: int = 0
    acked_reports: int = 0
    facts: int = 0
    error_report: str = ""
    cpu: dict[str, float] = field(default_factory=dict)  # from the closed loop's start to its rows stored

    @property
    def lost(self) -> int:
        return max(0, self.acked_readings - self.distinct_rows)

    @property
    def duplicated(self) -> int:
        return max(0, self.facts - self.acked_reports) + (self.rows - self.distinct_rows)


async def closed_loop(pool: Pool, requests: Requests, intervals: int, seconds: float, warmup: float,
                      server_pids: dict[str, list[int]], bench: Bench, name: str) -> tuple[Closed, ClosedLoop]:
    loop = ClosedLoop(pool, requests, expect_updated)
    running = asyncio.create_task(loop.run())
    await asyncio.sleep(warmup)
    result = Closed(name)
    foreign = ForeignLoad(bench)
    pids = [p for ps in server_pids.values() for p in ps]
    cpu0 = {k: cpu_seconds(v) for k, v in server_pids.items()}
    ok0, err0, t0, srv0, own0 = loop.ok, loop.errors, now(), cpu_seconds(pids), own_cpu_seconds()
    await asyncio.sleep(seconds)
    ok1, err1, t1, srv1, own1 = loop.ok, loop.errors, now(), cpu_seconds(pids), own_cpu_seconds()
    result.cpu = {k: cpu_seconds(v) - cpu0[k] for k, v in server_pids.items()}
    loop.stop()
    await running
    result.reports, result.errors, result.wall = ok1 - ok0, err1 - err0, t1 - t0
    result.readings = result.reports * intervals
    result.server_cpu, result.loadgen_cpu = srv1 - srv0, own1 - own0
    result.foreign = foreign.verdict()
    result.t0 = t0  # type: ignore[attr-defined]
    result.ok0 = ok0  # type: ignore[attr-defined]
    return result, loop


# --------------------------------------------------------------------------- adrstack


async def run_adrstack(bench: Bench, args, backend: set[int]) -> tuple[StackResult, list[str]]:
    import psycopg

    result = StackResult()
    names = unique_names()
    database_url = bench.new_database(names["database"])
    gw_port = pick_port()
    base = {**gateway_env(names, bench.nats_url, gw_port, 10), "DATABASE_URL": database_url}
    gateway = bench.service("gateway", "adrstack.gateway", base, {SERVER_CPU})
    telemetry = bench.service("telemetry", "adrstack.telemetry", {**base, "ADRSTACK_LOG_LEVEL": "INFO"}, backend)
    services = [gateway, telemetry]
    try:
        await wait_health(bench, gateway, gw_port)
        await wait_log(bench, telemetry, "telemetry ready")
        for child in services:
            bench.note_placement(child)
        messages = Messages(HOST, gw_port)
        ven_ids, reg_pool = await rawload.register(HOST, gw_port, messages, args.vens, args.connections,
                                                   name_prefix=f"ingest{names['database'][-6:]}")
        if not all(ven_ids):
            raise BenchError(f"registrations failed: {reg_pool.error_report()}")
        template = register_report_body("VENSENTINEL", "REQSENTINEL")
        regs = [messages.post("EiReport", template.replace(b"VENSENTINEL", v.encode())
                              .replace(b"REQSENTINEL", f"rr-{i}".encode())) for i, v in enumerate(ven_ids)]
        pool = await Pool(HOST, gw_port).open(min(args.connections, len(regs)))
        registered = Registered()
        done = await ClosedLoop(pool, regs, registered, total=len(regs)).run()
        pool.close()
        if done.errors or len(registered.report_request_ids) != len(ven_ids):
            raise BenchError(f"report registrations failed: {pool.error_report()}")
        print(f"  {len(ven_ids)} VENs registered, each with one TELEMETRY_USAGE data point")

        bodies = ReportBodies(ven_ids, args.intervals, report_request_ids={
            ven_ids[i]: rr for i, rr in registered.report_request_ids.items()})
        pids = {"gateway": [gateway.pid], "nats-server": [bench.nats.proc.pid], "telemetry": [telemetry.pid],
                "postgres": bench.postgres_pids()}
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
            rows = Rows(db)
            pool = await Pool(HOST, gw_port).open(args.connections)
            try:
                # Warm-up (every VEN reports a few times), drained before the measured window.
                warm = ClosedLoop(pool, Requests(messages, bodies, 0), expect_updated)
                task = asyncio.create_task(warm.run())
                await asyncio.sleep(args.warmup)
                warm.stop()
                await task
                next_report = warm.next_index
                acked_readings = warm.ok * args.intervals
                acked_reports = warm.ok
                got, _ = await rows.wait_for(acked_readings, 0, args.drain_timeout)
                if got < acked_readings:
                    print(f"  !! warm-up not drained: {got} of {acked_readings} rows after {args.drain_timeout:g} s")
                floor = await rows.max_epoch()

                # Closed loop: acknowledged and stored readings per second.
                requests = Requests(messages, bodies, next_report)
                back0 = {k: cpu_seconds(v) for k, v in pids.items()}
                c, loop = await closed_loop(pool, requests, args.intervals, args.seconds, 0.0,
                                            {"gateway + nats-server": [gateway.pid, bench.nats.proc.pid]},
                                            bench, "adrstack gateway + nats-server")
                next_report += loop.next_index
                window_readings = loop.ok * args.intervals  # every report acknowledged in the run
                acked_readings += window_readings
                acked_reports += loop.ok
                got, t_done = await rows.wait_for(window_readings, floor, args.drain_timeout)
                result.closed = c
                result.drained = got >= window_readings
                result.drain_wall = t_done - c.t0  # type: ignore[attr-defined]
                result.stored_rate = got / result.drain_wall if result.drain_wall else 0.0
                result.cpu = {k: cpu_seconds(v) - back0[k] for k, v in pids.items()}

                # Open loop: report -> row latency.
                result.latency_rate = max(1.0, args.latency_load * result.stored_rate / args.intervals)
                open_loop = ScheduledOpenLoop(pool, Requests(messages, bodies, next_report), result.latency_rate,
                                              args.seconds, expect_updated)
                seen: dict[int, float] = {}
                stop = asyncio.Event()
                watcher = asyncio.create_task(rows.watch_reports(next_report, seen, stop, args.poll_ms / 1000,
                                                                 floor=await rows.max_epoch()))
                lat = await open_loop.run()
                expected = {k for k in open_loop.acked}
                deadline = now() + args.drain_timeout
                while not expected <= seen.keys() and now() < deadline:
                    await asyncio.sleep(0.05)
                stop.set()
                await watcher
                next_report += lat.scheduled
                acked_readings += len(open_loop.acked) * args.intervals
                acked_reports += len(open_loop.acked)
                row_lat = [seen[k] - open_loop.scheduled[k] for k in expected if k in seen]
                result.latency_reports = len(expected)
                result.not_seen = len(expected - seen.keys())
                result.latency_errors = lat.errors
                result.row_p50_ms = percentile(row_lat, 50) * 1e3
                result.row_p99_ms = percentile(row_lat, 99) * 1e3 if not result.not_seen else float("inf")
                result.answer_p99_ms = percentile(lat.latencies, 99) * 1e3
            finally:
                pool.close()
                result.error_report = pool.error_report()

            # Exactly once, over every phase.
            await rows.wait_for(acked_readings, 0, args.drain_timeout)
            await asyncio.sleep(1.0)  # anything stored beyond what was acknowledged shows too
            result.rows, result.distinct_rows = await rows.count_distinct()
            result.acked_readings, result.acked_reports = acked_readings, acked_reports
            result.facts = await stream_report_facts(bench.nats_url, names["ADRSTACK_STREAM_NAME"],
                                                     names["ADRSTACK_SUBJECT_PREFIX"])
        for child in services:
            bench.check_alive(child)
        return result, ven_ids
    finally:
        for child in reversed(services):
            bench.stop(child)


# --------------------------------------------------------------------------- plain openleadr


async def run_plain(bench: Bench, args, ven_ids: list[str]) -> Closed:
    vens_file = bench.tmp / "plain-vens.txt"
    vens_file.write_text("".join(f"{v} reg-{i}\n" for i, v in enumerate(ven_ids)))
    plain = await PlainVtn(bench, {SERVER_CPU}, 10, vens_file).started()
    bench.note_placement(plain.child)
    try:
        messages = Messages(HOST, plain.port)
        bodies = ReportBodies(ven_ids, args.intervals)
        pool = await Pool(HOST, plain.port).open(args.connections)
        try:
            result, loop = await closed_loop(pool, Requests(messages, bodies, 0), args.intervals, args.seconds,
                                             args.warmup, {"plain": [plain.child.pid]}, bench,
                                             "plain openleadr.OpenADRServer")
        finally:
            pool.close()
            result_errors = pool.error_report()
        counted = await plain.ask("readings")
        result.error_report = result_errors
        if counted.get("readings") != loop.ok * args.intervals:
            raise BenchError(f"plain openleadr counted {counted} but answered {loop.ok} reports")
        bench.check_alive(plain.child)
        return result
    finally:
        bench.stop(plain.child)


# --------------------------------------------------------------------------- main


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_closed(c: Closed, intervals: int) -> None:
    print(f"  closed loop, {c.wall:.1f} s: {c.reports} reports ({c.readings} readings) answered OK, "
          f"{c.rate:,.0f} readings/s, {c.errors} errors")
    print(f"  server CPU {c.server_cpu:.2f} s ({c.server_cpu / max(c.wall, 1e-9):.0%} of one core) -> "
          f"{c.server_cpu / max(c.reports, 1) * 1e6:.0f} us per report; load generator CPU "
          f"{c.loadgen_cpu / max(c.wall, 1e-9):.0%} of one core ({c.loadgen_cpu / max(c.reports, 1) * 1e6:.0f} us "
          "per report)")
    print(f"  {c.foreign}")
    if c.error_report:
        print(f"  errors: {c.error_report}")


async def run(args, bench: Bench) -> int:
    backend = {int(c) for c in args.backend_cpu.split(",")}
    bench.start_nats({SERVER_CPU})
    bench.start_postgres(backend)
    print(f"nats-server {bench.nats_url}; postgres {bench.database_url.rsplit('@', 1)[-1]}; load generator "
          f"{args.loop} on CPU {LOADGEN_CPU}; {args.vens} VENs, {args.intervals} intervals per report, "
          f"{args.connections} connections")

    print("\n== adrstack: gateway + nats-server (CPU 0), telemetry + Postgres (CPU "
          f"{args.backend_cpu})")
    s, ven_ids = await run_adrstack(bench, args, backend)
    c = s.closed
    print_closed(c, args.intervals)
    print(f"  stored end to end: {s.stored_rate:,.0f} readings/s ({c.readings} readings acknowledged in the "
          f"window, all rows in Postgres {s.drain_wall:.1f} s after it began{'' if s.drained else ' -- NOT DRAINED'})")
    print(f"  open loop at {s.latency_rate * args.intervals:,.0f} readings/s ({s.latency_rate:,.0f} reports/s, "
          f"{args.latency_load:.0%} of the stored rate), {args.seconds:g} s: report -> row p50 {s.row_p50_ms:.0f} ms, "
          f"p99 {s.row_p99_ms:.0f} ms (rows polled every {args.poll_ms:g} ms); answer p99 {s.answer_p99_ms:.1f} ms; "
          f"{s.latency_errors} errors, {s.not_seen} reports never seen in Postgres")
    print(f"  exactly once: {s.acked_readings} readings acknowledged in all phases, {s.rows} rows "
          f"({s.distinct_rows} distinct); {s.acked_reports} reports acknowledged, {s.facts} report.data facts in "
          f"the stream -> lost {s.lost}, duplicated {s.duplicated}")
    print(f"  CPU from the window's start until drained ({s.drain_wall:.1f} s): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in s.cpu.items()))
    if s.error_report:
        print(f"  errors: {s.error_report}")

    print("\n== plain openleadr.OpenADRServer (CPU 0), on_update_report only counts")
    p = await run_plain(bench, args, ven_ids)
    print_closed(p, args.intervals)

    bench.placement.append(("load generator (this process)", 0, f"cpu {LOADGEN_CPU}"))
    print()
    bench.print_placement()
    ratio = s.stored_rate / p.rate if p.rate else float("nan")
    acked_ratio = c.rate / p.rate if p.rate else float("nan")
    print("\ntargets:")
    print(f"  stored end to end >= {TARGET_STORED:,.0f} readings/s: {s.stored_rate:,.0f}/s -> "
          f"{met(s.stored_rate >= TARGET_STORED)}")
    print(f"  >= {TARGET_RATIO:g}x plain openleadr: {ratio:.2f}x -> {met(ratio >= TARGET_RATIO)}")
    print(f"  report -> row p99 < {TARGET_P99_MS:g} ms: {s.row_p99_ms:.0f} ms -> {met(s.row_p99_ms < TARGET_P99_MS)}")
    print(f"  lost 0, duplicated 0: {s.lost}, {s.duplicated} -> {met(s.lost == 0 and s.duplicated == 0)}")
    print(f"gateway only: {c.rate:,.0f} readings/s acknowledged to VENs ({acked_ratio:.2f}x plain openleadr), "
          f"{c.server_cpu / max(c.reports, 1) * 1e6:.0f} us gateway+nats CPU per report")
    bad = c.errors or p.errors or s.latency_errors or not s.drained or s.not_seen
    if bad:
        print(f"!!!!! errors: adrstack {c.errors} (closed) + {s.latency_errors} (open), plain {p.errors}; "
              f"drained {s.drained}; {s.not_seen} reports never seen -- figures suspect")
    print(f"ingest: {ratio:.2f}x plain openleadr ({s.stored_rate:,.0f}/s vs {p.rate:,.0f}/s), p99 "
          f"{s.row_p99_ms:.0f} ms, lost {s.lost}, duplicated {s.duplicated}")
    return 1 if bad or s.lost or s.duplicated else 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vens", type=int, default=200, help="reporting VENs; default 200")
    p.add_argument("--intervals", type=int, default=10, help="intervals (readings) per report; default 10")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections; default 64")
    p.add_argument("--seconds", type=float, default=10.0, help="closed-loop window and open-loop length; default 10")
    p.add_argument("--warmup", type=float, default=3.0, help="closed-loop seconds before measuring; default 3")
    p.add_argument("--latency-load", type=float, default=0.5,
                   help="open-loop rate as a fraction of the measured stored rate; default 0.5")
    p.add_argument("--poll-ms", type=float, default=50.0, help="how often the rows are polled for latency")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for rows; default 120")
    p.add_argument("--backend-cpu", default=str(LOADGEN_CPU),
                   help="CPU(s) for telemetry and Postgres; default 1 (the plain library stores nothing, so the "
                        "storing side does not take CPU 0 from the gateway)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    return p.parse_args(argv)


def main() -> int:
    return run_benchmark("ingest", run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
