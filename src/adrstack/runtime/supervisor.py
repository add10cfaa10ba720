"""Supervised child processes: prefixed output, restart with backoff, and a stop that leaves nothing.

Each child runs in its own session (so a terminal's Ctrl-C reaches only us and we decide the
order of the stop, and so that signalling its process group reaches anything it spawned) and
with a parent-death signal (so even a SIGKILL of the supervisor takes the children along).
Everything runs on the event loop's thread: the parent-death signal belongs to the forking
thread, so children must never be spawned from a worker thread that may exit.

The embedded NATS and Postgres of `adrstack up` are children like the services, with a few
more settings: a layer (servers stop after the services that use them), their own stop and
parent-death signals, a log file instead of the prefixed output, a readiness probe (so a
restart is reported once it serves again) and a clean-up between a death and the restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, TextIO

from .lifeline import die_with_parent
from .logprefix import LinePrefixer, prefix

SUPERVISOR_NAME = "adrstack"


SERVICES_LAYER = 1
SERVERS_LAYER = 0


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: str | None = None
    # stop() stops the highest layer first: services before the servers they stand on.
    layer: int = SERVICES_LAYER
    # Said with every exit and comeback, e.g. "embedded NATS on 127.0.0.1:4222".
    about: str = ""
    # Output appended to this file instead of the prefixed log.
    log_file: Path | None = None
    stop_signal: int = signal.SIGTERM
    stop_timeout: float | None = None  # None: the supervisor's
    pdeathsig: int | None = None  # None: the supervisor's
    # More keyword arguments for the process (user, group, extra_groups for Postgres as root).
    popen_kwargs: dict[str, Any] = field(default_factory=dict)
    # Blocking probe (run in a worker thread): True once the child serves. A restarted child is
    # reported when it passes; Supervisor.wait_ready() waits for it.
    ready: Callable[[], bool] | None = None
    # Blocking clean-up (run in a worker thread) between a death and the restart; gets the pid
    # of the run that ended; what it returns (if anything) is said in the log.
    before_restart: Callable[[int], str | None] | None = None


@dataclass
class Backoff:
    """Restart delays 1, 2, 4, ... up to ``maximum``; a run of ``stable_after`` seconds resets them."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    stable_after: float = 30.0
    _next: float | None = None

    def next_delay(self, ran_for: float) -> float:
        if self._next is None or ran_for >= self.stable_after:
            self._next = self.initial
        delay = self._next
        self._next = min(self.maximum, delay * self.factor)
        return delay


def describe_exit(code: int | None) -> str:
    if code is None:
        return "an error before it started"
    if code < 0:
        try:
            return f"code {code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"code {code}"
    return f"code {code}"


def signal_group(pid: int, sig: int) -> None:
    """Signal the child's process group (its pid, since it leads its own session)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Child:
    spec: ChildSpec
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    pids: list[int] = field(default_factory=list)
    exits: list[int | None] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def label(self) -> str:
        return f"{self.spec.name} ({self.spec.about})" if self.spec.about else self.spec.name

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class Supervisor:
    def __init__(self, out: TextIO | None = None, width: int = 9, stop_timeout: float = 10.0,
                 backoff: Backoff | None = None, pdeathsig: int = signal.SIGKILL) -> None:
        self.out = out or sys.stdout
        self.width = width
        self.stop_timeout = stop_timeout
        self._backoff = backoff or Backoff()
        self._pdeathsig = pdeathsig
        self._stopping = asyncio.Event()
        self.children: dict[str, Child] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    # -- output ------------------------------------------------------------------------
    def write(self, line: str) -> None:
        try:
            self.out.write(line)
            self.out.flush()
        except (BrokenPipeError, ValueError):  # stdout closed: keep supervising regardless
            pass

    def say(self, message: str) -> None:
        for line in message.splitlines() or [""]:
            self.write(f"{prefix(SUPERVISOR_NAME, self.width)}{line}\n")

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, spec: ChildSpec) -> Child:
        if spec.name in self.children:
            raise ValueError(f"a child named {spec.name!r} is already supervised")
        child = Child(spec)
        if self.stopping:  # started while stop() runs (a late when_started): never runs long
            child.stopping.set()
        self.children[spec.name] = child
        self._tasks[spec.name] = asyncio.create_task(self._keep_running(child), name=f"supervise {spec.name}")
        return child

    async def stop(self) -> None:
        """Stop every child, layer by layer from the highest: its stop signal (SIGTERM unless
        said otherwise) to each child of the layer, SIGKILL what is left after its stop timeout,
        and wait for the whole layer before the next."""
        self._stopping.set()
        for layer in sorted({c.spec.layer for c in self.children.values()}, reverse=True):
            names = [n for n, c in self.children.items() if c.spec.layer == layer]
            for name in names:
                self.children[name].stopping.set()
            await asyncio.gather(*(self._tasks[n] for n in names), return_exceptions=True)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def wait_ready(self, name: str, timeout: float) -> None:
        """Wait until ``name`` passes its readiness probe; raise if its first run ends before
        that (its restarts are not waited for) or ``timeout`` passes."""
        child = self.children[name]
        deadline = time.monotonic() + timeout
        while not child.ready.is_set():
            if child.exits:
                where = f"; see {child.spec.log_file}" if child.spec.log_file else ""
                raise RuntimeError(f"{child.label} exited with {describe_exit(child.exits[0])} "
                                   f"before it was ready{where}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{child.label} was not ready within {timeout:g}s")
            await asyncio.sleep(0.05)

    async def _spawn(self, child: Child) -> asyncio.subprocess.Process:
        spec = child.spec
        log = open(spec.log_file, "ab") if spec.log_file is not None else None
        try:
            proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log if log is not None else asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=spec.env,
                cwd=spec.cwd,
                start_new_session=True,
                preexec_fn=die_with_parent(self._pdeathsig if spec.pdeathsig is None else spec.pdeathsig),
                **spec.popen_kwargs,
            )
        finally:
            if log is not None:
                log.close()  # the child has its own copy
        child.starts += 1
        child.pids.append(proc.pid)
        return proc

    async def _keep_running(self, child: Child) -> None:
        backoff = Backoff(self._backoff.initial, self._backoff.factor, self._backoff.maximum,
                          self._backoff.stable_after)
        name = child.spec.name
        while not child.stopping.is_set():
            started = time.monotonic()
            code: int | None = None
            try:
                proc = await self._spawn(child)
            except OSError as e:
                self.say(f"{child.label} could not start: {e}")
            else:
                child.proc = proc
                pump = asyncio.create_task(self._pump(child, proc))
                probe = asyncio.create_task(self._probe(child, proc))
                code = await self._run_until_exit_or_stop(child, proc)
                probe.cancel()
                child.ready.clear()
                # Let the child's last words (a traceback, usually) come out before our verdict.
                await asyncio.wait({pump}, timeout=2)
                pump.cancel()
            child.exits.append(code)
            if child.stopping.is_set():
                return
            delay = backoff.next_delay(time.monotonic() - started)
            self.say(f"{child.label} exited with {describe_exit(code)}; restarting in {delay:g}s")
            if child.spec.before_restart is not None and child.pids:
                try:  # spawns nothing, so a worker thread is fine (see module doc)
                    if said := await asyncio.to_thread(child.spec.before_restart, child.pids[-1]):
                        self.say(f"{name}: {said}")
                except Exception as e:  # the restart itself will tell whether it mattered
                    self.say(f"{name}: clean-up before the restart failed: {type(e).__name__}: {e}")
            try:
                await asyncio.wait_for(child.stopping.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass

    async def _probe(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        """Set ``child.ready`` once its probe passes (at once without one); report a comeback."""
        probe = child.spec.ready
        while probe is not None and proc.returncode is None:
            try:
                if await asyncio.to_thread(probe):
                    break
            except Exception:  # not ready yet
                pass
            await asyncio.sleep(0.1)
        if proc.returncode is not None:
            return
        child.ready.set()
        if probe is not None and child.starts > 1:
            self.say(f"{child.label} is back (pid {proc.pid}, start {child.starts})")

    async def _run_until_exit_or_stop(self, child: Child, proc: asyncio.subprocess.Process) -> int:
        exited = asyncio.create_task(proc.wait())
        stop = asyncio.create_task(child.stopping.wait())
        await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not exited.done():
            await self._terminate(child, proc)
        code = await exited
        # Anything the child left behind in its group goes too (pid == pgid; see module doc).
        signal_group(proc.pid, signal.SIGKILL)
        return code

    async def _terminate(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        timeout = self.stop_timeout if child.spec.stop_timeout is None else child.spec.stop_timeout
        signal_group(proc.pid, child.spec.stop_signal)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.say(f"{child.spec.name} did not stop within {timeout:g}s; killing it")
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def _pump(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        if proc.stdout is None:  # output goes to the child's log file
            return
        lines = LinePrefixer(child.spec.name, self.width)
        while chunk := await proc.stdout.read(65536):
            for line in lines.feed(chunk):
                self.write(line)
        for line in lines.finish():
            self.write(line)


async def run_until_signalled(sup: Supervisor, specs: Iterable[ChildSpec],
                              when_started: Callable[[Supervisor], Awaitable[None]] | None = None) -> None:
    """Start ``specs``, run ``when_started`` alongside, and on SIGINT/SIGTERM stop everything.

    Should ``when_started`` fail, everything is stopped too and its exception raised."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    extra: asyncio.Task | None = None
    failure: BaseException | None = None
    try:
        for spec in specs:
            sup.start(spec)
        if when_started is not None:
            extra = asyncio.create_task(when_started(sup))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({stopped, extra} if extra is not None else {stopped},
                           return_when=asyncio.FIRST_COMPLETED)
        if extra is not None and extra.done() and not extra.cancelled():
            failure = extra.exception()
        if failure is None:
            await stopped
        else:
            stopped.cancel()
    finally:
        if extra is not None:
            extra.cancel()
        sup.say("stopping (services first, then the servers they use; each gets its stop signal, "
                "SIGKILL if it has not stopped in time)" if failure is None else "stopping what was started")
        await sup.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)
    if failure is not None:
        raise failure
