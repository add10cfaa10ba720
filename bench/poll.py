"""Idle-poll benchmark: the adrstack gateway against a plain openleadr VTN, in the same run.

    uv run python bench/poll.py [--seconds 8] [--vens 1000] [--rss-vens 10000] [--skip-mtls]

For each server: VENs registered over HTTP, then 64 keep-alive raw-socket connections polling
them round-robin (idle polls: nothing new for the VEN). Measured:
  * closed loop (after a warm-up): polls per server CPU-second (user+sys of the server processes,
    for adrstack the gateway plus its nats-server), throughput, and the load generator's own CPU;
  * open loop at 50% of that server's measured throughput: p50/p99 latency from the scheduled
    send time, so queueing counts;
  * for the gateway, a fleet's polling (1,000 polls/s: 10,000 VENs every 10 s) without and then
    with 1,000 half-open connections held (a request line never finished): p99 both times;
  * gateway RSS per registered VEN: a freshly started gateway (fresh buckets) before and after
    registering --rss-vens VENs and polling each once;
  * over mutual TLS (--skip-mtls skips it; secure_gateway.py, mtls.py): the gateway in its secure
    mode (TLS, provisioned enrollment: --mtls-vens VENs, each provisioned and registered with a
    certificate of its own, one per connection) against plain openleadr in its own mTLS mode,
    polls per server CPU-second with signatures off; with signatures on (the gateway requiring
    them, polls XML-signed ahead, answers signed with the VTN's ECC key, then with its RSA key;
    openleadr verifying and signing with ECC); and RSA-signed answers to unsigned polls. Probes
    before each run show that identity and signature checks are real.
Servers run on CPU 0, the load generator on CPU 1. The last four lines are the figures: the mTLS
ratios, then the summary (plain HTTP), which is the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

import psutil

from mtls import (STRANGER, MtlsResult, MtlsTarget, bench_identities, measure_mtls, measure_plain, ratio_lines,
                  response_signer)
from mtls import report as report_mtls
from rawload import OADR_ECC_SUITE, ClosedLoop, Messages, OpenLoop, Pool, now, percentile, register
from secure_gateway import REPLAY_WINDOW, SecureGateway
from stack import (HOST, LOADGEN_CPU, SERVER_CPU, Bench, BenchError, Child, ForeignLoad, PlainVtn, cpu_seconds,
                   gateway_env, own_cpu_seconds, pick_port, run_benchmark, unique_names, wait_health)

TARGET_RATIO = 3.0
TARGET_P99_MS = 5.0
TARGET_BYTES_PER_VEN = 1024
HALF_OPEN = 1000
TARGET_HALF_OPEN_P99_MS = 50.0
FLEET_RATE = 1000.0  # polls/s of the legitimate VENs then: 10,000 VENs at a 10 s interval
# mTLS figures: the gateway's polls per server CPU-second against plain openleadr's, by mtls.ratio_lines key.
MTLS_TARGETS = {"signed": 2.0, "rsa": 50.0}
# The secure gateway's runs: (key, name, signatures required and polls signed, the VTN pair signing answers).
GATEWAY_MTLS_RUNS = (
    ("unsigned", "adrstack gateway mTLS + nats-server, signatures off", False, None),
    ("signed", "adrstack gateway mTLS + nats-server, signatures required, ECC-signed answers", True, "ecc"),
    ("signed_rsa", "adrstack gateway mTLS + nats-server, signatures required, RSA-signed answers", True, "rsa"),
    ("rsa", "adrstack gateway mTLS + nats-server, RSA-signed responses (unsigned polls)", False, "rsa"),
)
PRESIGN_MAX = 30000  # signed polls made ahead per run (~2.6 kB each); beyond that they are signed as sent


@dataclass
class ServerResult:
    name: str
    polls: int = 0
    errors: int = 0
    wall: float = 0.0
    server_cpu: float = 0.0
    loadgen_cpu: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    half_rate: float = 0.0
    half_ok: int = 0
    half_errors: int = 0
    half_server_cpu: float = 0.0
    half_loadgen_cpu: float = 0.0
    half_wall: float = 0.0
    lateness_p99_ms: float = float("nan")
    half_open_p99_ms: float = float("nan")
    fleet_p99_ms: float = float("nan")
    half_open_held: int = 0
    half_open_errors: int = 0
    error_report: str = ""
    foreign: str = ""

    @property
    def throughput(self) -> float:
        return self.polls / self.wall if self.wall else 0.0

    @property
    def polls_per_cpu(self) -> float:
        return self.polls / self.server_cpu if self.server_cpu else 0.0


# --------------------------------------------------------------------------- servers


async def start_gateway(bench: Bench, name: str) -> tuple[Child, int]:
    port = pick_port()
    env = gateway_env(unique_names(), bench.nats_url, port, poll_interval=10)
    child = bench.service(name, "adrstack.gateway", env, {SERVER_CPU})
    await wait_health(bench, child, port)
    return child, port


# --------------------------------------------------------------------------- measurements


async def registered_polls(port: int, count: int, connections: int, what: str) -> tuple[list[bytes], list[str]]:
    messages = Messages(HOST, port)
    ven_ids, pool = await register(HOST, port, messages, count, connections)
    missing = sum(1 for v in ven_ids if not v)
    if missing:
        raise BenchError(f"{missing} of {count} registrations with {what} failed: {pool.error_report()}")
    return [messages.poll(v) for v in ven_ids], ven_ids


async def measure(name: str, port: int, server_pids: list[int], args, bench: Bench) -> ServerResult:
    """Closed loop for throughput and CPU, then open loop at half of it for latency."""
    result = ServerResult(name)
    polls, _ = await registered_polls(port, args.vens, args.connections, name)
    pool = await Pool(HOST, port).open(args.connections)
    try:
        closed = ClosedLoop(pool, polls)
        running = asyncio.create_task(closed.run())
        await asyncio.sleep(args.warmup)  # every VEN polled at least once: first-poll work is not measured
        foreign = ForeignLoad(bench)
        ok0, err0, t0, cpu0, own0 = closed.ok, closed.errors, now(), cpu_seconds(server_pids), own_cpu_seconds()
        await asyncio.sleep(args.seconds)
        ok1, err1, t1, cpu1, own1 = closed.ok, closed.errors, now(), cpu_seconds(server_pids), own_cpu_seconds()
        closed.stop()
        await running
        result.polls, result.errors, result.wall = ok1 - ok0, err1 - err0, t1 - t0
        result.server_cpu, result.loadgen_cpu = cpu1 - cpu0, own1 - own0

        result.half_rate = result.throughput / 2
        cpu0, own0 = cpu_seconds(server_pids), own_cpu_seconds()
        half = await OpenLoop(pool, polls, result.half_rate, args.seconds).run()
        result.half_server_cpu, result.half_loadgen_cpu = cpu_seconds(server_pids) - cpu0, own_cpu_seconds() - own0
        result.half_ok, result.half_errors, result.half_wall = half.ok, half.errors, half.wall
        result.foreign = foreign.verdict()
        result.p50_ms = percentile(half.latencies, 50) * 1e3
        result.p99_ms = percentile(half.latencies, 99) * 1e3
        result.lateness_p99_ms = percentile(half.lateness, 99) * 1e3
        if args.half_open and name.startswith("adrstack"):
            await half_open_run(result, pool, polls, port, args)
    finally:
        pool.close()
        result.error_report = pool.error_report()
    return result


async def half_open_run(result: ServerResult, pool: Pool, polls: list[bytes], port: int, args) -> None:
    """A fleet's polling (FLEET_RATE) with and then without HALF_OPEN connections that hold a
    request line they never finish (slowloris), each measured within the gateway's header timeout
    (10 s), so that they are all held throughout."""
    seconds = min(args.seconds, 6.0)
    alone = await OpenLoop(pool, polls, FLEET_RATE, seconds).run()
    result.fleet_p99_ms = percentile(alone.latencies, 99) * 1e3
    held = []
    for _ in range(HALF_OPEN):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: vtn\r\nContent-Ty")
        held.append((reader, writer))
    try:
        run = await OpenLoop(pool, polls, FLEET_RATE, seconds).run()
        result.half_open_p99_ms = percentile(run.latencies, 99) * 1e3
        result.half_open_errors = run.errors + alone.errors
        result.half_open_held = sum(1 for reader, _ in held if not reader.at_eof())
    finally:
        for _, writer in held:
            writer.close()


async def gateway_rss_per_ven(bench: Bench, count: int, connections: int) -> tuple[int, int, float]:
    """(RSS before, RSS after, bytes per VEN) of a fresh gateway registering and polling ``count`` VENs."""
    child, port = await start_gateway(bench, "gateway-rss")
    try:
        proc = psutil.Process(child.pid)
        await asyncio.sleep(1.0)  # let start-up allocations settle
        before = proc.memory_info().rss
        polls, _ven_ids = await registered_polls(port, count, connections, "the gateway")
        pool = await Pool(HOST, port).open(connections)
        try:
            once = await ClosedLoop(pool, polls, total=len(polls)).run()
        finally:
            pool.close()
        if once.errors:
            raise BenchError(f"{once.errors} of {count} polls failed during the RSS run: {pool.error_report()}")
        await asyncio.sleep(1.0)
        after = proc.memory_info().rss
    finally:
        bench.stop(child)
    return before, after, (after - before) / count


async def mtls_figures(args, bench: Bench) -> tuple[dict[str, MtlsResult], dict[str, MtlsResult]]:
    """Idle polls over mutual TLS: the gateway in its secure mode (provisioned enrollment, one VEN
    per certificate) and plain openleadr in its own mTLS mode, signatures off, required (signed
    polls, signed answers) and RSA-signed answers; see secure_gateway.py and mtls.py."""
    k = args.mtls_vens
    if args.mtls_warmup + args.mtls_seconds + 60 > REPLAY_WINDOW:
        raise BenchError(f"the mTLS runs presign polls: warm-up + measuring must stay well inside the gateway's "
                         f"{REPLAY_WINDOW:g} s replay window")
    certs, identities = bench_identities(bench.tmp / "certs", k, k)
    stranger = certs.vens[STRANGER]
    print(f"\n== mTLS: {k} VENs, each with its own certificate (CA and VTN certificates by adrstack certs' "
          f"ensure_certs in {certs.dir}), {args.connections} connections, TLS 1.2 {OADR_ECC_SUITE}; "
          f"{args.mtls_seconds:g} s measured after {args.mtls_warmup:g} s")
    secure = SecureGateway(bench, certs)
    await secure.provision(identities)
    gateway: dict[str, MtlsResult] = {}
    registered = None
    presign = 0
    for key, name, signed, sign_with in GATEWAY_MTLS_RUNS:
        child, port = await secure.start(f"gateway-mtls-{key}", require_signatures=signed, sign_with=sign_with)
        try:
            notes = []
            if registered is None:
                notes = await secure.probe_enrollment(port, identities)
                registered = await secure.register(port, identities)
                notes.append(f"{len(registered)} provisioned VENs registered, each over its own certificate")
            target = MtlsTarget(name, port, [child.pid, bench.nats.proc.pid], certs.ca.cert, registered,
                                signed_polls=signed, signed_responses=sign_with is not None,
                                stranger=(stranger.cert, stranger.key),
                                response_signer=response_signer(certs, sign_with))
            result = await measure_mtls(target, bench, args.mtls_seconds, args.mtls_warmup, args.connections,
                                        presign=presign if signed else 0)
            result.probes[:0] = notes
            bench.check_alive(child)
        finally:
            bench.stop(child)
        gateway[key] = result
        report_mtls(result)
        # Signed polls are made ahead for the gateway (its replay window outlasts the run), as many as
        # the last run would have needed and a third more, in whole rounds of the VENs.
        budget = result.throughput * (args.mtls_warmup + args.mtls_seconds + 2) * 4 / 3
        presign = min(PRESIGN_MAX, -(-int(budget) // k) * k)
    run_args = argparse.Namespace(seconds=args.mtls_seconds, warmup=args.mtls_warmup, connections=args.connections)
    plain = await measure_plain(bench, certs, identities, run_args)
    return gateway, plain


# --------------------------------------------------------------------------- output


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(r: ServerResult) -> None:
    print(f"\n== {r.name}")
    print(f"  closed loop, 64 connections, {r.wall:.1f} s: {r.polls} polls, {r.throughput:,.0f} polls/s, "
          f"{r.errors} errors")
    print(f"  server CPU {r.server_cpu:.2f} s ({r.server_cpu / r.wall:.0%} of one core) "
          f"-> {r.polls_per_cpu:,.0f} polls per server CPU-second")
    print(f"  load generator CPU {r.loadgen_cpu:.2f} s ({r.loadgen_cpu / r.wall:.0%} of one core, "
          f"{r.loadgen_cpu / max(1, r.polls) * 1e6:.1f} us per poll)")
    print(f"  open loop at half load ({r.half_rate:,.0f} polls/s, {r.half_wall:.1f} s): p50 {r.p50_ms:.2f} ms, "
          f"p99 {r.p99_ms:.2f} ms, {r.half_ok} ok, {r.half_errors} errors; server CPU "
          f"{r.half_server_cpu / max(r.half_wall, 1e-9):.0%}, load generator CPU "
          f"{r.half_loadgen_cpu / max(r.half_wall, 1e-9):.0%}; generator send lateness p99 "
          f"{r.lateness_p99_ms:.2f} ms (included in the latencies)")
    if r.half_open_held:
        print(f"  open loop at {FLEET_RATE:,.0f} polls/s: p99 {r.fleet_p99_ms:.2f} ms; the same with {HALF_OPEN} "
              f"half-open connections held ({r.half_open_held} still open at the end): p99 "
              f"{r.half_open_p99_ms:.2f} ms, {r.half_open_errors} errors")
    print(f"  {r.foreign}")
    if r.error_report:
        print(f"  errors: {r.error_report}")


def loud_mtls_errors(results: list[MtlsResult]) -> bool:
    bad = [r for r in results if r.errors]
    for r in bad:
        print(f"\n!!!!! {r.name}: {r.errors} errors -- NOT COUNTED AS THROUGHPUT; the figures for this server "
              f"are suspect: {r.error_report}")
    return bool(bad)


def loud_errors(results: list[ServerResult]) -> bool:
    bad = [r for r in results if r.errors or r.half_errors or r.half_open_errors]
    for r in bad:
        print(f"\n!!!!! {r.name}: {r.errors} errors in the closed loop, {r.half_errors} in the open loop "
              f"-- THESE ARE NOT COUNTED AS THROUGHPUT; the figures for this server are suspect: {r.error_report}")
    return bool(bad)


# --------------------------------------------------------------------------- main


async def run(args, bench: Bench) -> int:
    bench.start_nats({SERVER_CPU})
    print(f"nats-server {bench.nats_url} (JetStream in {bench.tmp})")

    gateway, port = await start_gateway(bench, "gateway")
    bench.note_placement(gateway, "adrstack gateway")
    gw = await measure("adrstack gateway + nats-server", port, [gateway.pid, bench.nats.proc.pid], args, bench)
    bench.check_alive(gateway)
    bench.stop(gateway)
    report(gw)

    plain = await PlainVtn(bench, {SERVER_CPU}).started()
    bench.note_placement(plain.child, "plain openleadr")
    pl = await measure("plain openleadr.OpenADRServer", plain.port, [plain.child.pid], args, bench)
    bench.check_alive(plain.child)
    bench.stop(plain.child)
    report(pl)

    print(f"\n== gateway memory: fresh gateway, {args.rss_vens} VENs registered and polled once")
    before, after, per_ven = await gateway_rss_per_ven(bench, args.rss_vens, args.connections)
    print(f"  RSS {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after -> {per_ven:,.0f} B per VEN")

    gw_mtls, pl_mtls = await mtls_figures(args, bench) if args.mtls else ({}, {})

    print(f"\nload generator: {args.loop}, pinned to CPU {LOADGEN_CPU}; "
          f"its cost: {gw.loadgen_cpu / max(1, gw.polls) * 1e6:.1f} us CPU per poll against the gateway, "
          f"{pl.loadgen_cpu / max(1, pl.polls) * 1e6:.1f} us against plain openleadr "
          f"(ceiling about {max(gw.polls, pl.polls) / max(gw.loadgen_cpu, pl.loadgen_cpu, 1e-9):,.0f} polls/s "
          "of one core)")
    bench.print_placement()

    ratio = gw.polls_per_cpu / pl.polls_per_cpu if pl.polls_per_cpu else float("nan")
    print("\ntargets:")
    print(f"  polls per server CPU-second >= {TARGET_RATIO:.1f}x plain openleadr: {ratio:.2f}x -> "
          f"{met(ratio >= TARGET_RATIO)}")
    print(f"  p99 <= {TARGET_P99_MS:g} ms at half load: {gw.p99_ms:.2f} ms -> {met(gw.p99_ms <= TARGET_P99_MS)} "
          f"(plain openleadr: {pl.p99_ms:.2f} ms)")
    print(f"  <= {TARGET_BYTES_PER_VEN} B (1 KiB) per registered VEN: {per_ven:,.0f} B -> "
          f"{met(per_ven <= TARGET_BYTES_PER_VEN)}")
    if args.half_open:
        print(f"  p99 < {TARGET_HALF_OPEN_P99_MS:g} ms for VENs polling at {FLEET_RATE:,.0f}/s while {HALF_OPEN} "
              f"half-open connections are held: {gw.half_open_p99_ms:.2f} ms -> "
              f"{met(gw.half_open_p99_ms < TARGET_HALF_OPEN_P99_MS)} (without them: {gw.fleet_p99_ms:.2f} ms)")
    if args.mtls:
        for key, what in (("signed", "mTLS, signatures on (signed polls verified, answers signed)"),
                          ("rsa", "RSA-signed responses")):
            g, p = gw_mtls[key], pl_mtls[key]
            times = g.polls_per_cpu / p.polls_per_cpu if p.polls_per_cpu else float("nan")
            print(f"  {what} per server CPU-second >= {MTLS_TARGETS[key]:g}x plain openleadr: {times:.2f}x -> "
                  f"{met(times >= MTLS_TARGETS[key])}")
    mtls_results = [*gw_mtls.values(), *pl_mtls.values()]
    errors = loud_errors([gw, pl]) | loud_mtls_errors(mtls_results)
    noisy = [r.name for r in [gw, pl, *mtls_results] if "!!!!!" in r.foreign]
    if noisy:
        print(f"\n!!!!! THE MACHINE WAS NOT QUIET in {len(noisy)} of {2 + len(mtls_results)} measuring windows "
              f"(marked above): other processes used CPUs {SERVER_CPU},{LOADGEN_CPU}; those figures are unreliable "
              "-- rerun when nothing else runs")
    for line in ratio_lines(gw_mtls, pl_mtls, MTLS_TARGETS) if args.mtls else []:
        print(line)
    print(f"poll: {ratio:.2f}x plain openleadr ({gw.polls_per_cpu:,.0f} vs {pl.polls_per_cpu:,.0f} polls/CPU-s), "
          f"p99 {gw.p99_ms:.2f} ms at half load, {per_ven:,.0f} B/VEN at {args.rss_vens} VENs")
    return 1 if errors else 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0,
                   help="length of each measuring window (closed loop, then open loop); default 8")
    p.add_argument("--warmup", type=float, default=3.0, help="closed-loop seconds before measuring; default 3")
    p.add_argument("--vens", type=int, default=1000, help="registered, polling VENs; default 1000")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections; default 64")
    p.add_argument("--rss-vens", type=int, default=10000, help="VENs for the RSS-per-VEN figure; default 10000")
    p.add_argument("--no-half-open", dest="half_open", action="store_false",
                   help=f"skip the run with {HALF_OPEN} half-open connections held")
    p.add_argument("--skip-mtls", dest="mtls", action="store_false",
                   help="skip the mTLS figures (secure gateway vs plain openleadr in its mTLS mode)")
    p.add_argument("--mtls-vens", type=int, default=64,
                   help="mTLS runs: VENs, each with its own certificate; default 64 (one per connection)")
    p.add_argument("--mtls-seconds", type=float, default=6.0, help="mTLS runs: measuring window; default 6")
    p.add_argument("--mtls-warmup", type=float, default=2.0, help="mTLS runs: seconds before measuring; default 2")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, NATS data)")
    return p.parse_args(argv)


def main() -> int:
    return run_benchmark("poll", run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
