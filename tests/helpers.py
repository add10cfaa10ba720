"""Shared test helpers: waiting on a condition with a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable


async def eventually(
    probe: Callable[[], Any | Awaitable[Any]],
    timeout: float = 15.0,
    interval: float = 0.1,
    message: str = "condition",
) -> Any:
    """Call ``probe`` until it returns something truthy; return it. Fails after ``timeout`` seconds,
    re-raising the probe's last assertion/exception for a useful message."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last_error = None
        except (AssertionError, Exception) as e:  # the condition is not met yet
            last_error = e
        if time.monotonic() >= deadline:
            if last_error is not None:
                raise AssertionError(f"{message} not met within {timeout}s: {last_error!r}") from last_error
            raise AssertionError(f"{message} not met within {timeout}s")
        await asyncio.sleep(interval)


def wait_until(probe: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, message: str = "condition") -> Any:
    """Synchronous twin of :func:`eventually`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
            last_error = None
        except Exception as e:
            last_error = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout}s: {last_error!r}") from last_error
        time.sleep(interval)


# The images compose/docker-compose.yml deploys, so that containers in tests are the ones
# deployments run (test_compose_files keeps the two equal).
NATS_IMAGE = "nats:2.10.24-alpine"
POSTGRES_IMAGE = "postgres:16.4-bookworm"


def nats_container():
    """A JetStream NATS container of the pinned image (not started)."""
    from testcontainers.community.nats import NatsContainer

    return NatsContainer(NATS_IMAGE, jetstream=True)


def postgres_container():
    """A Postgres container of the pinned image (not started)."""
    from testcontainers.postgres import PostgresContainer

    return PostgresContainer(POSTGRES_IMAGE, driver=None)


def temp_prefix() -> str:
    """What the names of this test run's temp dirs start with: the pid tells them apart from
    those of other runs on the machine, so the end-of-session check blames only its own."""
    return f"adrstack-t{os.getpid()}-"


def temp_dir(name: str) -> Path:
    """A new directory in the system temp dir, short-pathed (Postgres' socket path must stay under
    107 bytes, which pytest's tmp_path can exceed); the caller removes it, the session checks."""
    return Path(tempfile.mkdtemp(prefix=f"{temp_prefix()}{name}-"))


STACK_NAME_FIELDS = ("subject_prefix", "stream_name", "vens_bucket", "events_bucket", "provisioning_bucket",
                     "nonces_bucket", "groups_bucket", "programs_bucket", "commands_bucket", "dead_letter_stream")


# What a test stack's streams may hold. JetStream reserves a stream's max_bytes from the server's
# storage when the stream is made: at the defaults (8 GiB facts + 1 GiB dead letters) a few stacks
# at once (4 xdist workers, other runs on the machine's NATS) exhaust it ("insufficient storage
# resources available", err 10047). No test comes near these sizes.
TEST_STREAM_LIMITS = {"stream_max_bytes": 1024**3, "dead_letter_max_bytes": 256 * 1024**2}


def stack_env(settings, **extra: str) -> dict[str, str]:
    """The environment of a service process of the stack ``settings`` names (its own prefix, stream
    and buckets: the process binds to them, it never creates them)."""
    import os

    env = dict(os.environ)
    env.update({"NATS_URL": settings.nats_url, "DATABASE_URL": settings.database_url})
    env.update({f"ADRSTACK_{name.upper()}": str(getattr(settings, name)) for name in STACK_NAME_FIELDS})
    env.update({f"ADRSTACK_{name.upper()}": str(getattr(settings, name)) for name in TEST_STREAM_LIMITS})
    env.update(extra)
    return env


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, also for 4xx/5xx answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text exposition -> {(name, frozenset of (label, value)): value}; every sample line
    must parse and every metric must have its # TYPE, else the exposition is broken."""
    import re

    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
    typed: set[str] = set()
    samples: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        m = sample.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, f"{name} has no # TYPE"
        pairs = frozenset(label.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def metric(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} not in {sorted(n for n, _ in samples)}"
    return samples[key]


async def stop_process(proc, timeout: float = 15.0) -> int | None:
    """SIGTERM a service subprocess and wait for it to drain; killed if it has not exited by
    ``timeout`` (then an asyncio.TimeoutError is raised after the kill). Returns its exit code."""
    if proc.returncode is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
