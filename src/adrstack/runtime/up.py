"""``adrstack up``: infrastructure, migrations, the four services (and the demo fleet), supervised."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Mapping, TextIO

from . import migrate
from .infra import Infra, display_url
from .logprefix import prefix
from .options import UpOptions
from .ports import port_is_free
from .supervisor import SUPERVISOR_NAME, ChildSpec, Supervisor, run_until_signalled

VTN_PATH = "/OpenADR2/Simple/2.0b"
NAME_WIDTH = 9  # the longest child name: "scheduler", "telemetry", "simulator"
HEALTH_REMINDER_EVERY = 30.0


@dataclass(frozen=True)
class Service:
    name: str  # the log prefix
    module: str  # python -m <module>


SERVICES = (
    Service("gateway", "adrstack.gateway"),
    Service("scheduler", "adrstack.scheduler"),
    Service("telemetry", "adrstack.telemetry"),
    Service("api", "adrstack.api"),
)
SIMULATOR = Service("simulator", "adrstack.simulator")


class Interrupted(BaseException):
    """SIGTERM/SIGINT outside the event loop; a BaseException so no ``except Exception`` eats it."""


def local_host(bind_host: str) -> str:
    """The address to reach a server bound to ``bind_host`` from this machine."""
    if bind_host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{bind_host}]" if ":" in bind_host else bind_host


def display_host(bind_host: str) -> str:
    return "localhost" if bind_host in ("", "0.0.0.0", "::", "127.0.0.1", "localhost") else local_host(bind_host)


def busy_port_error(opts: UpOptions) -> str | None:
    for port, what, flag in ((opts.vtn_port, "VTN", "--vtn-port"), (opts.api_port, "API", "--api-port")):
        if not port_is_free(port, opts.host or "0.0.0.0"):
            return f"port {port} ({what}) is already in use; pick another with {flag}"
    return None


def child_env(opts: UpOptions, base: Mapping[str, str], nats_url: str, database_url: str) -> dict[str, str]:
    env = dict(base)
    env.update({
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        "ADRSTACK_VTN_HOST": opts.host,
        "ADRSTACK_VTN_PORT": str(opts.vtn_port),
        "ADRSTACK_POLL_INTERVAL": opts.poll_interval_text,
        "ADRSTACK_API_HOST": opts.host,
        "ADRSTACK_API_PORT": str(opts.api_port),
        # Logs must reach our prefixer line by line, not in 8 KiB blocks.
        "PYTHONUNBUFFERED": "1",
    })
    return env


def service_argv(service: Service) -> list[str]:
    return [sys.executable, "-m", service.module]


def simulator_argv(opts: UpOptions) -> list[str]:
    vtn_url = f"http://{local_host(opts.host)}:{opts.vtn_port}{VTN_PATH}"
    return [*service_argv(SIMULATOR), "--count", str(opts.demo), "--vtn-url", vtn_url]


def banner(opts: UpOptions, nats_url: str, database_url: str) -> str:
    host = display_host(opts.host)
    return "\n".join([
        "adrstack is up:",
        f"  VTN        http://{host}:{opts.vtn_port}{VTN_PATH}",
        f"  GraphQL    http://{host}:{opts.api_port}/graphql",
        f"  Dashboard  http://{host}:{opts.api_port}/",
        f"  NATS       {nats_url}",
        f"  Database   {display_url(database_url)}",
        "Press Ctrl-C to stop.",
    ])


def _health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


async def wait_healthy(sup: Supervisor, urls: dict[str, str]) -> None:
    """Poll each /health until it answers 200, reminding every so often what is still awaited."""
    pending = dict(urls)
    next_reminder = time.monotonic() + HEALTH_REMINDER_EVERY
    while pending:
        for name, url in list(pending.items()):
            # urllib blocks; a worker thread is fine here because it spawns nothing.
            if await asyncio.to_thread(_health_ok, url):
                del pending[name]
        if pending:
            if time.monotonic() >= next_reminder:
                sup.say("still waiting for " + ", ".join(f"{n} ({u})" for n, u in pending.items()))
                next_reminder = time.monotonic() + HEALTH_REMINDER_EVERY
            await asyncio.sleep(0.25)


async def supervise(opts: UpOptions, env: dict[str, str], nats_url: str, database_url: str,
                    out: TextIO) -> None:
    async def when_started(sup: Supervisor) -> None:
        host = local_host(opts.host)
        await wait_healthy(sup, {
            "gateway": f"http://{host}:{opts.vtn_port}/health",
            "api": f"http://{host}:{opts.api_port}/health",
        })
        sup.say(banner(opts, nats_url, database_url))
        if opts.demo:
            sup.say(f"starting {opts.demo} simulated VEN(s)")
            sup.start(ChildSpec(SIMULATOR.name, simulator_argv(opts), env))

    specs = [ChildSpec(service.name, service_argv(service), env) for service in SERVICES]
    await run_until_signalled(Supervisor(out, width=NAME_WIDTH), specs, when_started)


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def run_up(opts: UpOptions, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    env = dict(os.environ if env is None else env)
    out = out or sys.stdout
    if (message := busy_port_error(opts)) is not None:
        print(f"adrstack: {message}", file=sys.stderr)
        return 2

    def say(message: str) -> None:
        out.write(f"{prefix(SUPERVISOR_NAME, NAME_WIDTH)}{message}\n")
        out.flush()

    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    infra = Infra(opts.data_dir, env, say)
    try:
        try:
            opts.data_dir.mkdir(parents=True, exist_ok=True)
            infra.start()
            say("running database migrations")
            migrate.upgrade(infra.database_url)
        except Interrupted:
            say("interrupted while starting; stopping")
            return 0
        except Exception as e:
            print(f"adrstack: could not start: {first_line(e)}", file=sys.stderr)
            return 1
        try:
            asyncio.run(supervise(opts, child_env(opts, env, infra.nats_url, infra.database_url),
                                  infra.nats_url, infra.database_url, out))
        except Interrupted:  # a signal in the short gap before supervise() installed its handlers
            pass
        return 0
    finally:
        # Stopping Postgres must not be cut short by a second Ctrl-C; each stop has its own timeout.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        infra.stop()
        say("stopped")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
