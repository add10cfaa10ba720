"""Supervised child processes: prefixed output, restart with backoff, and a stop that leaves nothing.

Each child runs in its own session (so a terminal's Ctrl-C reaches only us and we decide the
order of the stop, and so that signalling its process group reaches anything it spawned) and
with a parent-death signal (so even a SIGKILL of the supervisor takes the children along).
Everything runs on the event loop's thread: the parent-death signal belongs to the forking
thread, so children must never be spawned from a worker thread that may exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, TextIO

from .lifeline import die_with_parent
from .logprefix import LinePrefixer, prefix

SUPERVISOR_NAME = "adrstack"


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: str | None = None


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
        self._tasks: list[asyncio.Task] = []

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
        self.children[spec.name] = child
        self._tasks.append(asyncio.create_task(self._keep_running(child), name=f"supervise {spec.name}"))
        return child

    async def stop(self) -> None:
        """SIGTERM every child, SIGKILL what is left after ``stop_timeout``, and wait for all."""
        self._stopping.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def _spawn(self, child: Child) -> asyncio.subprocess.Process:
        spec = child.spec
        proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=spec.env,
            cwd=spec.cwd,
            start_new_session=True,
            preexec_fn=die_with_parent(self._pdeathsig),
        )
        child.starts += 1
        child.pids.append(proc.pid)
        return proc

    async def _keep_running(self, child: Child) -> None:
        backoff = Backoff(self._backoff.initial, self._backoff.factor, self._backoff.maximum,
                          self._backoff.stable_after)
        name = child.spec.name
        while not self.stopping:
            started = time.monotonic()
            code: int | None = None
            try:
                proc = await self._spawn(child)
            except OSError as e:
                self.say(f"{name} could not start: {e}")
            else:
                child.proc = proc
                pump = asyncio.create_task(self._pump(child, proc))
                code = await self._run_until_exit_or_stop(child, proc)
                # Let the child's last words (a traceback, usually) come out before our verdict.
                await asyncio.wait({pump}, timeout=2)
                pump.cancel()
            if self.stopping:
                return
            delay = backoff.next_delay(time.monotonic() - started)
            self.say(f"{name} exited with {describe_exit(code)}; restarting in {delay:g}s")
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass

    async def _run_until_exit_or_stop(self, child: Child, proc: asyncio.subprocess.Process) -> int:
        exited = asyncio.create_task(proc.wait())
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not exited.done():
            await self._terminate(child, proc)
        code = await exited
        # Anything the child left behind in its group goes too (pid == pgid; see module doc).
        signal_group(proc.pid, signal.SIGKILL)
        return code

    async def _terminate(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.stop_timeout)
        except asyncio.TimeoutError:
            self.say(f"{child.spec.name} did not stop within {self.stop_timeout:g}s; killing it")
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def _pump(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        lines = LinePrefixer(child.spec.name, self.width)
        while chunk := await proc.stdout.read(65536):
            for line in lines.feed(chunk):
                self.write(line)
        for line in lines.finish():
            self.write(line)


async def run_until_signalled(sup: Supervisor, specs: Iterable[ChildSpec],
                              when_started: Callable[[Supervisor], Awaitable[None]] | None = None) -> None:
    """Start ``specs``, run ``when_started`` alongside, and on SIGINT/SIGTERM stop everything."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    extra: asyncio.Task | None = None
    try:
        for spec in specs:
            sup.start(spec)
        if when_started is not None:
            extra = asyncio.create_task(when_started(sup))
        await stop.wait()
    finally:
        if extra is not None:
            extra.cancel()
        sup.say(f"stopping (SIGTERM to every child, SIGKILL after {sup.stop_timeout:g}s)")
        await sup.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)
