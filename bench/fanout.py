"""Event fan-out benchmark: one DR event to every VEN of a polling fleet, adrstack against a plain
openleadr VTN, in the same run.

    uv run python bench/fanout.py [--sizes 1000,10000,100000] [--interval 10]

For each size N: N VENs registered over HTTP, each polling every --interval seconds at its own
random phase over a shared pool of keep-alive raw-socket connections, and answering every
oadrDistributeEvent with an oadrCreatedEvent optIn to /EiEvent, like a real VEN.

adrstack (nats-server, Postgres, gateway, scheduler, telemetry, api as processes): a GraphQL
``createEvent`` for all N VENs; measured from the mutation's answer to the last VEN having the
event, and to all N opt responses stored in Postgres (``event_responses``, polled).

plain openleadr: an OpenADRServer with the same VENs in its ven_lookup; ``add_event`` per VEN
(timed); measured from the end of that loop to the last VEN having the event and to the last
on_created_event callback (add_event's ``callback``).

Pinning: gateway + nats-server (and the plain VTN) on CPU 0, the load generator on CPU 1; the
scheduler, telemetry, api and Postgres where --backend-cpu says (default 1, see --help).
The last line is the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import sys
from dataclasses import dataclass, field

import rawload
from rawload import (TICK, Conn, Messages, Pool, describe, distributed_events, http_call, is_distribute, is_ok_response,
                     now)
from stack import (HOST, LOADGEN_CPU, SERVER_CPU, Bench, BenchError, ForeignLoad, PlainVtn, cpu_seconds, gateway_env,
                   own_cpu_seconds, pick_port, run_benchmark, unique_names, wait_health, wait_log)

TARGET_10K_DELIVERY = 11.0
TARGET_10K_STORED = 16.0
TARGET_100K_DELIVERY = 12.0
DEFAULT_MAX_BODY = 1024 * 1024  # the api's ADRSTACK_MAX_BODY_BYTES default
DEFAULT_COMMAND_TIMEOUT = 5.0  # the api's ADRSTACK_COMMAND_TIMEOUT default
CREATE_EVENT = ("mutation($input: CreateEventInput!) { createEvent(input: $input) "
                "{ eventId status modificationNumber } }")


# --------------------------------------------------------------------------- the fleet


class Fleet:
    """N VENs, each polling every ``interval`` s at its own phase, over a shared connection pool.

    Open loop: a poll goes out at its VEN's time whatever the server does, waiting in a FIFO for a
    free connection if need be. But like a real VEN, a VEN whose previous poll (or opt answer) is
    still queued or unanswered does not poll again: that slot is counted as ``skipped``, the sign
    of a server that cannot keep up with the fleet.
    """

    def __init__(self, pool: Pool, messages: Messages, ven_ids: list[str], interval: float, seed: int = 1):
        n = len(ven_ids)
        rng = random.Random(seed)  # same phases for adrstack and plain openleadr
        self.phases = [rng.random() * interval for _ in range(n)]
        self.order = sorted(range(n), key=self.phases.__getitem__)
        self.pool, self.messages, self.ven_ids, self.interval = pool, messages, ven_ids, interval
        self.polls = [messages.poll(v) for v in ven_ids]
        self.busy = bytearray(n)
        self.answered = bytearray(n)  # had at least one good answer to a poll
        self.answered_count = 0
        self.got_event_at = [0.0] * n  # first oadrDistributeEvent with an event in it
        self.got_event = 0
        self.opt_acked = 0
        self.last_opt_ack_at = 0.0
        self.polls_ok = 0
        self.skipped = 0
        self.errors = 0
        self.max_lateness = 0.0
        self.idle: collections.deque[Conn] = collections.deque(pool.conns)
        self.backlog: collections.deque[tuple[bytes, tuple[str, int]]] = collections.deque()
        self.stopping = False
        pool.on_new = self.idle.append

    # scheduling ------------------------------------------------------------

    async def run(self) -> None:
        n, order, phases, interval = len(self.order), self.order, self.phases, self.interval
        start = now() + 0.05
        k = 0
        while not self.stopping:
            t = now()
            while True:
                i = order[k % n]
                due = start + (k // n) * interval + phases[i]
                if due > t:
                    break
                self.max_lateness = max(self.max_lateness, t - due)
                self._poll(i)
                k += 1
            # At least TICK: asyncio/uvloop timers are millisecond-granular, so shorter sleeps return
            # at once and the loop would spin; everything due is sent in one pass anyway.
            await asyncio.sleep(min(0.05, max(TICK, due - now())))

    def stop(self) -> None:
        self.stopping = True

    def _poll(self, i: int) -> None:
        if self.busy[i]:
            self.skipped += 1
            return
        self.busy[i] = 1
        self._submit(self.polls[i], ("poll", i))

    def _submit(self, request: bytes, ctx: tuple[str, int]) -> None:
        while self.idle:
            conn = self.idle.popleft()
            if conn.usable:
                conn.send(request, self._on_done, ctx)
                return
        self.backlog.append((request, ctx))

    def _release(self, conn: Conn, i: int) -> None:
        self.busy[i] = 0
        if not conn.usable:
            return
        if self.backlog:
            request, ctx = self.backlog.popleft()
            conn.send(request, self._on_done, ctx)
        else:
            self.idle.append(conn)

    # answers ---------------------------------------------------------------

    def _error(self, why: str) -> None:
        self.errors += 1
        self.pool.note_error(why)

    def _on_done(self, conn: Conn, status: int, body: bytes, ctx: tuple[str, int]) -> None:
        kind, i = ctx
        if status == 0:
            self._error(body.decode())
            self.busy[i] = 0
            return
        if kind == "poll":
            if is_ok_response(status, body):
                self.polls_ok += 1
                self._mark_answered(i)
            elif is_distribute(status, body):
                self.polls_ok += 1
                self._mark_answered(i)
                if self._got_event(i, body, conn):
                    return  # the connection carries the VEN's oadrCreatedEvent now
            else:
                self._error(f"poll: {describe(status, body)}")
        elif is_ok_response(status, body):
            self.opt_acked += 1
            self.last_opt_ack_at = now()
        else:
            self._error(f"oadrCreatedEvent: {describe(status, body)}")
        self._release(conn, i)

    def _mark_answered(self, i: int) -> None:
        if not self.answered[i]:
            self.answered[i] = 1
            self.answered_count += 1

    def _got_event(self, i: int, body: bytes, conn: Conn) -> bool:
        """Record the event's arrival and answer it optIn at once, on the same connection."""
        request_id, events = distributed_events(body)
        if not events:
            self._error("oadrDistributeEvent without events")
            return False
        if not self.got_event_at[i]:
            self.got_event_at[i] = now()
            self.got_event += 1
        conn.send(self.messages.created_event(self.ven_ids[i], request_id, events), self._on_done, ("opt", i))
        return True

    # progress --------------------------------------------------------------

    def counters(self) -> dict[str, float]:
        return {"polls": self.polls_ok, "skipped": self.skipped, "errors": self.errors, "cpu": own_cpu_seconds(),
                "at": now()}

    async def until(self, done, deadline: float) -> bool:
        while not done():
            if now() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True


# --------------------------------------------------------------------------- results


@dataclass
class StackResult:
    size: int
    registered_per_s: float = 0.0
    mutations: list[tuple[int, float]] = field(default_factory=list)  # (VEN ids, seconds) per createEvent
    mutation_note: str = ""
    delivery: float | None = None
    stored: float | None = None
    reason: str = ""
    errors: int = 0


@dataclass
class PlainResult:
    size: int
    add_event_loop: float | None = None
    delivery: float | None = None
    callbacks: float | None = None
    reason: str = ""
    errors: int = 0


def fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --------------------------------------------------------------------------- shared steps


async def settle(fleet: Fleet, interval: float, timeout: float, extra=None) -> str:
    """One full poll cycle, then until every VEN had an answer (and ``extra()`` holds); prints how the
    server coped with the idle fleet. Returns what did not happen in time, or ''."""
    before = fleet.counters()
    await asyncio.sleep(interval)
    print(fleet_line(fleet, before, "idle fleet, first poll cycle"))
    deadline = now() + timeout
    if not await fleet.until(lambda: fleet.answered_count == len(fleet.ven_ids), deadline):
        return f"only {fleet.answered_count} of {len(fleet.ven_ids)} VENs had a poll answered"
    if extra is not None:
        while not await extra():
            if now() >= deadline:
                return "telemetry did not catch up with the first polls"
            await asyncio.sleep(0.5)
    return ""


async def stop_fleet(fleet: "Fleet", running: asyncio.Task, pool: Pool, result) -> None:
    fleet.stop()
    await running
    pool.close()
    result.errors = fleet.errors
    if pool.errors:
        print(f"  errors: {pool.error_report()}")


def fleet_line(fleet: Fleet, before: dict[str, float], what: str = "fan-out") -> str:
    """What the fleet did since ``before`` (a ``counters()`` snapshot), and what it cost the generator."""
    d = {k: v - before[k] for k, v in fleet.counters().items()}
    wall = max(d["at"], 1e-9)
    return (f"  fleet, {what} ({wall:.1f} s): {d['polls']:.0f} polls answered "
            f"({d['polls'] / wall:,.0f}/s of {len(fleet.ven_ids) / fleet.interval:,.0f}/s due), "
            f"{d['skipped']:.0f} skipped (VEN still waiting for its previous answer), {d['errors']:.0f} errors; "
            f"{fleet.got_event} got the event, {fleet.opt_acked} optIn answers acknowledged; "
            f"generator {d['cpu'] / wall:.0%} of CPU {LOADGEN_CPU}, worst send lateness so far "
            f"{fleet.max_lateness * 1e3:.0f} ms")


def latest(times: list[float], start_of: callable) -> float | None:
    """Seconds from each VEN's start (its createEvent's answer) to its event; the worst one."""
    if not all(times):
        return None
    return max(t - start_of(i) for i, t in enumerate(times))


# --------------------------------------------------------------------------- adrstack


def mutation_body(ven_ids: list[str]) -> bytes:
    return json.dumps({"query": CREATE_EVENT, "variables": {"input": {
        "venIds": ven_ids, "intervals": [{"duration": "PT1H", "payload": 2.0}]}}}).encode()


async def nats_max_payload(url: str) -> int:
    """The server's max_payload from its INFO line: a command or KV value larger than it is refused."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        info = json.loads((await reader.readline()).split(b" ", 1)[1])
    finally:
        writer.close()
    return int(info.get("max_payload", 1024 * 1024))


def plan_mutations(ven_ids: list[str], chunk: int, max_payload: int) -> tuple[list[list[str]], str]:
    """Which createEvent calls to make, and why. By default (``chunk`` 0) one call for all VENs when
    it fits: its body within the api's default 1 MiB and its venIDs within NATS's max_payload (the
    command, the scheduler's reply and the stored event each carry every venID); else calls of
    10,000 VENs. A positive ``chunk`` forces that many per call (the api's body limit is raised for
    the bench, so e.g. --chunk 100000 shows what one call for 100,000 VENs does)."""
    whole = len(mutation_body(ven_ids))
    ids_bytes = len(json.dumps(ven_ids))
    fits = whole <= DEFAULT_MAX_BODY and ids_bytes < max_payload * 0.9
    if chunk > 0:
        why = f"--chunk {chunk}: up to {chunk:,} VENs per createEvent"
    elif fits:
        return [ven_ids], f"one createEvent for all {len(ven_ids)} VENs ({whole:,} B body)"
    else:
        chunk = 10_000
        why = (f"one createEvent for all {len(ven_ids)} VENs does not fit: its body is {whole:,} B "
               f"(api limit ADRSTACK_MAX_BODY_BYTES={DEFAULT_MAX_BODY:,} B) and its venIDs alone are "
               f"{ids_bytes:,} B, over NATS max_payload {max_payload:,} B, which the command, the scheduler's "
               f"reply and the stored event each must fit in; so {chunk:,} VENs per createEvent")
    return [ven_ids[i:i + chunk] for i in range(0, len(ven_ids), chunk)], why


async def create_event(api_port: int, ven_ids: list[str], timeout: float) -> tuple[str, float]:
    """One createEvent; (eventId, seconds it took). Raises BenchError with the API's answer."""
    body = mutation_body(ven_ids)
    sent = now()
    try:
        status, answer = await http_call(HOST, api_port, "POST", "/graphql", body, timeout=timeout)
    except asyncio.TimeoutError:
        raise BenchError(f"createEvent for {len(ven_ids)} VENs got no answer within {timeout:g} s") from None
    took = now() - sent
    try:
        data = json.loads(answer)
        event_id = data["data"]["createEvent"]["eventId"]
    except (ValueError, KeyError, TypeError):
        raise BenchError(f"createEvent for {len(ven_ids)} VENs failed after {took:.1f} s: HTTP {status} "
                         f"{answer[:300]!r}") from None
    return event_id, took


async def stored_responses(conn, event_ids: list[str]) -> int:
    cur = await conn.execute("select count(distinct ven_id) from event_responses where event_id = any(%s)",
                             (event_ids,))
    return (await cur.fetchone())[0]


async def seen_vens(conn) -> int:
    cur = await conn.execute("select count(*) from vens where last_seen_at is not null")
    return (await cur.fetchone())[0]


async def run_adrstack(bench: Bench, args, size: int, backend: set[int]) -> tuple[StackResult, list[str]]:
    import psycopg

    result = StackResult(size)
    names = unique_names()
    database_url = bench.new_database(names["database"])
    gw_port, api_port = pick_port(), pick_port()
    base = {**gateway_env(names, bench.nats_url, gw_port, args.interval), "DATABASE_URL": database_url}
    # Scheduler and telemetry have no /health: they log INFO "... ready" lines (and little else).
    gateway = bench.service(f"gateway-{size}", "adrstack.gateway", base, {SERVER_CPU})
    scheduler = bench.service(f"scheduler-{size}", "adrstack.scheduler", {**base, "ADRSTACK_LOG_LEVEL": "INFO"},
                              backend)
    telemetry = bench.service(f"telemetry-{size}", "adrstack.telemetry", {**base, "ADRSTACK_LOG_LEVEL": "INFO"},
                              backend)
    max_body = max(DEFAULT_MAX_BODY, len(mutation_body(["ven-000000000000"] * size)) + 4096)
    api = bench.service(f"api-{size}", "adrstack.api", {
        **base, "ADRSTACK_API_HOST": HOST, "ADRSTACK_API_PORT": str(api_port),
        "ADRSTACK_MAX_BODY_BYTES": str(max_body), "ADRSTACK_COMMAND_TIMEOUT": f"{args.mutation_timeout:g}"}, backend)
    services = [gateway, scheduler, telemetry, api]
    ven_ids: list[str] = []
    try:
        await wait_health(bench, gateway, gw_port)
        await wait_health(bench, api, api_port)
        await wait_log(bench, scheduler, "scheduler ready")
        await wait_log(bench, telemetry, "telemetry ready")
        for child in services:
            bench.note_placement(child)

        messages = Messages(HOST, gw_port)
        t = now()
        ven_ids, reg_pool = await rawload.register(HOST, gw_port, messages, size, args.connections,
                                                   name_prefix=f"fanout{names['database'][-6:]}",
                                                   timeout=args.register_timeout)
        registered = [v for v in ven_ids if v]
        result.registered_per_s = len(registered) / (now() - t)
        print(f"  registered {len(registered)} of {size} VENs over HTTP at {result.registered_per_s:,.0f}/s"
              + (f"; errors: {reg_pool.error_report()}" if reg_pool.errors else ""))
        if len(registered) < size:
            result.reason = f"only {len(registered)} of {size} VENs registered"
            return result, registered

        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
            pool = await Pool(HOST, gw_port, replace_lost=True).open(min(args.pool, size))
            fleet = Fleet(pool, messages, ven_ids, args.interval)
            running = asyncio.create_task(fleet.run())
            try:
                problem = await settle(fleet, args.interval, args.settle_timeout,
                                       lambda: _all_seen(db, size))
                if problem:
                    print(f"  !! before the event: {problem} (after {args.settle_timeout:g} s); going on anyway")
                result.errors += fleet.errors
                await fanout_adrstack(bench, args, result, fleet, db, api_port, ven_ids, services)
            finally:
                await stop_fleet(fleet, running, pool, result)
        for child in services:
            bench.check_alive(child)
        return result, registered
    finally:
        for child in reversed(services):
            bench.stop(child)


async def _all_seen(db, size: int) -> bool:
    return await seen_vens(db) >= size


async def fanout_adrstack(bench: Bench, args, result: StackResult, fleet: Fleet, db, api_port: int,
                          ven_ids: list[str], services) -> None:
    size = len(ven_ids)
    chunks, why = plan_mutations(ven_ids, args.chunk, await nats_max_payload(bench.nats_url))
    result.mutation_note = why
    print(f"  {why}")
    pids = {c.name.rsplit("-", 1)[0]: [c.pid] for c in services}
    pids["nats-server"] = [bench.nats.proc.pid]
    cpu0 = {name: cpu_seconds(p) for name, p in pids.items()}
    pg0, t0, before, foreign = cpu_seconds(bench.postgres_pids()), now(), fleet.counters(), ForeignLoad(bench)

    returned_at: list[float] = []
    event_ids: list[str] = []
    for chunk in chunks:
        event_id, took = await create_event(api_port, chunk, args.mutation_timeout)
        returned_at.append(now())
        event_ids.append(event_id)
        result.mutations.append((len(chunk), took))
    per = len(chunks[0])
    start_of = lambda i: returned_at[i // per]  # noqa: E731 -- the createEvent that named VEN i
    slowest = max(took for _, took in result.mutations)
    print(f"  createEvent: {len(chunks)} call(s), slowest {slowest:.2f} s"
          + (f" -- over the api's default ADRSTACK_COMMAND_TIMEOUT of {DEFAULT_COMMAND_TIMEOUT:g} s, which "
             f"would have answered UNAVAILABLE (raised to {args.mutation_timeout:g} s here)"
             if slowest > DEFAULT_COMMAND_TIMEOUT else ""))

    deadline = returned_at[-1] + args.deadline
    if await fleet.until(lambda: fleet.got_event == size, deadline):
        result.delivery = latest(fleet.got_event_at, start_of)
    else:
        result.reason = (f"after {args.deadline:g} s only {fleet.got_event} of {size} VENs had the event "
                         f"({fleet.skipped - before['skipped']:.0f} poll slots skipped: the gateway could not "
                         "keep up)")
    while True:  # checked at least once, also when the delivery used up the deadline
        stored = await stored_responses(db, event_ids)
        if stored >= size:
            result.stored = now() - returned_at[-1]
        if stored >= size or now() >= deadline:
            break
        await asyncio.sleep(0.1)
    if result.stored is None:
        result.reason += (("; " if result.reason else "") +
                          f"after {args.deadline:g} s only {stored} of {size} opt responses were in Postgres "
                          f"({fleet.opt_acked} acknowledged by the gateway)")
    print(fleet_line(fleet, before))
    print(f"  CPU during the fan-out ({now() - t0:.1f} s): " + ", ".join(
        f"{name} {cpu_seconds(p) - cpu0[name]:.1f} s" for name, p in pids.items())
          + f", postgres {cpu_seconds(bench.postgres_pids()) - pg0:.1f} s")
    print(f"  {foreign.verdict()}")


# --------------------------------------------------------------------------- plain openleadr


async def run_plain(bench: Bench, args, size: int, ven_ids: list[str]) -> PlainResult:
    result = PlainResult(size)
    vens_file = bench.tmp / f"plain-vens-{size}.txt"
    vens_file.write_text("".join(f"{v} reg-{i}\n" for i, v in enumerate(ven_ids)))
    plain = await PlainVtn(bench, {SERVER_CPU}, args.interval, vens_file, name=f"plain-openleadr-{size}").started()
    bench.note_placement(plain.child)
    try:
        messages = Messages(HOST, plain.port)
        pool = await Pool(HOST, plain.port, replace_lost=True).open(min(args.pool, size))
        fleet = Fleet(pool, messages, ven_ids, args.interval)
        running = asyncio.create_task(fleet.run())
        try:
            problem = await settle(fleet, args.interval, args.settle_timeout)
            if problem:
                print(f"  !! before the event: {problem}; going on anyway")
            cpu0, t0, before, foreign = cpu_seconds([plain.child.pid]), now(), fleet.counters(), ForeignLoad(bench)
            added = await plain.ask("add_events", timeout=args.deadline)
            result.add_event_loop = added["end"] - added["start"]
            print(f"  add_event for {added['added']} VENs: {result.add_event_loop:.2f} s "
                  "(the server answers nothing meanwhile)")
            start, deadline = added["end"], added["end"] + args.deadline
            if await fleet.until(lambda: fleet.got_event == size, deadline):
                result.delivery = latest(fleet.got_event_at, lambda i: start)
            else:
                result.reason = (f"after {args.deadline:g} s only {fleet.got_event} of {size} VENs had the event "
                                 f"({fleet.skipped - before['skipped']:.0f} poll slots skipped: the server could "
                                 "not keep up)")
            while True:  # asked at least once, also when the delivery used up the deadline
                status = await plain.ask("status")
                if status["responses"] >= size:
                    result.callbacks = status["last_response_at"] - start
                if status["responses"] >= size or now() >= deadline:
                    break
                await asyncio.sleep(0.1)
            if result.callbacks is None:
                result.reason += (("; " if result.reason else "") + f"after {args.deadline:g} s only "
                                  f"{status.get('responses', 0)} of {size} on_created_event callbacks")
            print(fleet_line(fleet, before))
            print(f"  CPU during the fan-out ({now() - t0:.1f} s): plain openleadr "
                  f"{cpu_seconds([plain.child.pid]) - cpu0:.1f} s")
            print(f"  {foreign.verdict()}")
        finally:
            await stop_fleet(fleet, running, pool, result)
        bench.check_alive(plain.child)
    finally:
        bench.stop(plain.child)
    return result


# --------------------------------------------------------------------------- main


def print_size(stack: StackResult, plain: PlainResult | None) -> None:
    print(f"  => adrstack {stack.size} VENs: last VEN had the event {fmt(stack.delivery, ' s')} after createEvent "
          f"answered, all responses stored after {fmt(stack.stored, ' s')}"
          + (f"  [{stack.reason}]" if stack.reason else ""))
    if plain is not None:
        print(f"  => plain openleadr {plain.size} VENs: add_event loop {fmt(plain.add_event_loop, ' s')}, then last "
              f"VEN had the event after {fmt(plain.delivery, ' s')}, last on_created_event after "
              f"{fmt(plain.callbacks, ' s')}"
              + (f"  [{plain.reason}]" if plain.reason else ""))


async def run(args, bench: Bench) -> int:
    backend = {int(c) for c in args.backend_cpu.split(",")}
    bench.start_nats({SERVER_CPU})
    bench.start_postgres(backend)
    print(f"nats-server {bench.nats_url}; postgres {bench.database_url.rsplit('@', 1)[-1]}; "
          f"load generator {args.loop} on CPU {LOADGEN_CPU}; poll interval {args.interval:g} s")
    stacks: dict[int, StackResult] = {}
    plains: dict[int, PlainResult] = {}
    for size in args.sizes:
        print(f"\n== {size} VENs: adrstack")
        try:
            stacks[size], ven_ids = await run_adrstack(bench, args, size, backend)
        except BenchError as e:
            stacks[size], ven_ids = StackResult(size, reason=str(e).splitlines()[0]), []
            print(f"  !! {e}")
        if args.no_plain:
            print_size(stacks[size], None)
            continue
        print(f"== {size} VENs: plain openleadr")
        if len(ven_ids) < size:  # adrstack could not register them all; the baseline needs no registration
            ven_ids = ven_ids + [f"ven-p{i:011d}" for i in range(size - len(ven_ids))]
        try:
            plains[size] = await run_plain(bench, args, size, ven_ids)
        except BenchError as e:
            plains[size] = PlainResult(size, reason=str(e).splitlines()[0])
            print(f"  !! {e}")
        print_size(stacks[size], plains[size])
    bench.placement.append(("load generator (this process)", os.getpid(), f"cpu {LOADGEN_CPU}"))
    print()
    bench.print_placement()
    return summary(args, stacks, plains)


def summary(args, stacks: dict[int, StackResult], plains: dict[int, PlainResult]) -> int:
    s10, s100, p10 = stacks.get(10_000), stacks.get(100_000), plains.get(10_000)
    print("\ntargets:")
    for label, r, value, target in (
            ("10000 VENs have the event", s10, s10 and s10.delivery, TARGET_10K_DELIVERY),
            ("10000 responses in Postgres", s10, s10 and s10.stored, TARGET_10K_STORED),
            ("100000 VENs have the event", s100, s100 and s100.delivery, TARGET_100K_DELIVERY)):
        verdict = "not run" if r is None else met(value is not None and value <= target)
        print(f"  {label} within {target:g} s: {fmt(value, ' s')} -> {verdict}")
    for size in args.sizes:
        for what, r in (("adrstack", stacks.get(size)), ("plain openleadr", plains.get(size))):
            if r is not None and r.reason:
                print(f"  n/a or incomplete, {what} at {size} VENs: {r.reason}")
    not_run = [s for s in (10_000, 100_000) if s not in args.sizes]
    if not_run:
        print(f"  n/a: size(s) {', '.join(map(str, not_run))} not in --sizes")
    bad = {k: v for k, v in {**{f"adrstack {s}": r.errors for s, r in stacks.items()},
                             **{f"plain {s}": r.errors for s, r in plains.items()}}.items() if v}
    for name, n in bad.items():
        print(f"!!!!! {name} VENs: {n} ERRORS (unexpected answers; see 'errors:' above) -- figures suspect")
    if p10 is None and not args.no_plain:
        print("  plain openleadr figures are for 10000 VENs; 10000 was not run")
    print(f"fanout: {fmt(s10 and s10.delivery, 's')} to 10000 VENs, {fmt(s10 and s10.stored, 's')} to all "
          f"responses stored; 100000 VENs: {fmt(s100 and s100.delivery, 's')}; plain openleadr: "
          f"{fmt(p10 and p10.delivery, 's')} / {fmt(p10 and p10.callbacks, 's')}")
    return 1 if bad else 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000", help="fleet sizes; default 1000,10000,100000")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between a VEN's polls; default 10")
    p.add_argument("--pool", type=int, default=256, help="keep-alive connections the fleet shares; default 256")
    p.add_argument("--connections", type=int, default=64, help="connections for registering; default 64")
    p.add_argument("--chunk", type=int, default=0,
                   help="VEN ids per createEvent; default 0: all in one when that fits the api's default body "
                        "limit and NATS max_payload, else 10000")
    p.add_argument("--deadline", type=float, default=60.0,
                   help="seconds after the event is created to wait for delivery and for the responses; default 60")
    p.add_argument("--settle-timeout", type=float, default=180.0,
                   help="seconds to wait, after one poll cycle, for every VEN to have polled; default 180")
    p.add_argument("--register-timeout", type=float, default=900.0, help="seconds for all registrations")
    p.add_argument("--mutation-timeout", type=float, default=300.0,
                   help="seconds a createEvent may take (also the api's ADRSTACK_COMMAND_TIMEOUT); default 300")
    p.add_argument("--backend-cpu", default=str(LOADGEN_CPU),
                   help="CPU(s) for scheduler, telemetry, api and Postgres, e.g. 1, 0 or 0,1; default 1: they "
                        "do work the plain library does not do at all (persistence, commands), so they do not take "
                        "CPU 0 from the gateway; the load generator needs well under a core, see its CPU figures")
    p.add_argument("--no-plain", action="store_true", help="skip the plain openleadr baseline")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    return args


def main() -> int:
    return run_benchmark("fanout", run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
