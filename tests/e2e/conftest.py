"""The whole stack as processes: `adrstack up` (the same command users run) against this
test run's NATS and Postgres, with its own database, subject prefix, stream and buckets."""

from __future__ import annotations

import contextlib

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import psutil
import pytest

from adrstack.runtime.embedded import create_database, drop_database
from adrstack.runtime.ports import free_port
from tests.conftest import Infra, _cleanup_nats, unique_names
from tests.helpers import STACK_NAME_FIELDS, TEST_STREAM_LIMITS, temp_dir, wait_until
from adrstack.shared.settings import CommonSettings

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    proc: subprocess.Popen
    vtn_port: int
    api_port: int
    settings: CommonSettings
    data_dir: Path
    output: deque = field(default_factory=lambda: deque(maxlen=4000))
    token: str | None = None  # sent as Bearer by graphql()

    @property
    def vtn_url(self) -> str:
        return f"http://127.0.0.1:{self.vtn_port}/OpenADR2/Simple/2.0b"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def subjects(self):
        return self.settings.subjects

    def banner_value(self, label: str) -> str:
        """A value from the banner `adrstack up` prints once everything answers."""
        lines = list(self.output)
        start = max(i for i, line in enumerate(lines) if "adrstack is up:" in line)
        for line in lines[start:start + 14]:
            words = line.split()
            if label in words:
                return words[words.index(label) + 1]
        raise AssertionError(f"{label} not in the banner:\n" + "\n".join(lines[start:start + 14]))

    def log_tail(self, n: int = 80) -> str:
        return "\n".join(list(self.output)[-n:])

    def service_processes(self, service: str) -> list[psutil.Process]:
        """The child processes whose command line names ``python -m adrstack.<service>``."""
        found = []
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if f"adrstack.{service}" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.NoSuchProcess:
                pass
        return found

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        r = httpx.post(f"{self.api_url}/graphql", json={"query": query, "variables": variables or {}},
                       headers=headers, timeout=15)
        r.raise_for_status()
        return r.json()


def _pump(stream, sink: deque) -> None:
    for raw in iter(stream.readline, b""):
        sink.append(raw.decode("utf-8", "replace").rstrip())


# Data dirs of the stacks started; removed at the end of the session (a test may restart a stack
# on the same data, so not when one stops).
_DATA_DIRS: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _remove_data_dirs() -> Iterator[None]:
    yield
    for path in _DATA_DIRS:
        shutil.rmtree(path, ignore_errors=True)


def start_stack(env_overrides: dict[str, str], extra_args: list[str] = (), settings: CommonSettings | None = None,
                ready_timeout: float = 90.0, data_dir: Path | None = None, vtn_port: int | None = None,
                api_port: int | None = None) -> Stack:
    """Start `adrstack up`; by default on a new data dir and free ports, or (to start it again as
    it was) on the ``data_dir`` and ports given."""
    if data_dir is None:
        data_dir = temp_dir("e2e")
        _DATA_DIRS.append(data_dir)
    vtn_port, api_port = vtn_port or free_port(), api_port or free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env.update(env_overrides)
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "adrstack.runtime.cli", "up", "--vtn-port", str(vtn_port),
           "--api-port", str(api_port), "--data-dir", str(data_dir), "--poll-interval", "1",
           "--host", "127.0.0.1", *extra_args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=data_dir)
    stack = Stack(proc, vtn_port, api_port, settings or CommonSettings(), data_dir)
    threading.Thread(target=_pump, args=(proc.stdout, stack.output), daemon=True).start()

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"adrstack up exited with {proc.returncode}:\n{stack.log_tail()}")
        if not any("adrstack is up:" in line for line in list(stack.output)):
            return False
        try:
            if httpx.get(f"{stack.api_url}/health", timeout=2).status_code != 200:
                return False
            # A secure VTN answers only mutual TLS; `up` itself checked it on its plain health port.
            return "--secure" in extra_args or httpx.get(f"http://127.0.0.1:{vtn_port}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout=ready_timeout, interval=0.25, message="stack healthy")
    except Exception:
        stop_stack(stack)
        raise AssertionError(f"stack did not become healthy:\n{stack.log_tail()}")
    return stack


def stop_stack(stack: Stack) -> int | None:
    descendants = []
    try:
        descendants = psutil.Process(stack.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        pass
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        try:
            stack.proc.wait(40)
        except subprocess.TimeoutExpired:
            stack.proc.kill()
            stack.proc.wait(10)
    survivors = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in survivors:
        p.kill()
    assert not survivors, f"orphans left after stop: {[p.cmdline() for p in survivors]}"
    return stack.proc.returncode


@pytest.fixture(scope="module")
def stack(infra: Infra) -> Iterator[Stack]:
    with isolated_stack(infra) as s:
        yield s


@contextlib.contextmanager
def isolated_stack(infra: Infra, extra_args: list[str] = (), env: dict[str, str] | None = None) -> Iterator[Stack]:
    """`adrstack up` on the test servers with its own database, subject prefix, stream and buckets
    (and ``env`` on top); stopped (it must exit 0) and cleaned up afterwards."""
    names = unique_names()
    create_database(infra.admin_url, names["database"])
    database_url = infra.database(names["database"])
    settings = CommonSettings(nats_url=infra.nats_url, database_url=database_url,
                              **{k: names[k] for k in STACK_NAME_FIELDS}, **TEST_STREAM_LIMITS)
    overrides = {"NATS_URL": infra.nats_url, "DATABASE_URL": database_url,
                 **{f"ADRSTACK_{k.upper()}": names[k] for k in STACK_NAME_FIELDS},
                 **{f"ADRSTACK_{k.upper()}": str(v) for k, v in TEST_STREAM_LIMITS.items()}, **(env or {})}
    s = start_stack(overrides, extra_args=extra_args, settings=settings)
    try:
        yield s
    finally:
        code = stop_stack(s)
        _cleanup_nats(settings)
        drop_database(infra.admin_url, names["database"])
        assert code == 0, f"adrstack up exited with {code} on SIGTERM:\n{s.log_tail()}"
