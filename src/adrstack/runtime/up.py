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
from typing import TYPE_CHECKING, Mapping, TextIO

from . import endpoints, migrate
from .nats_init import init_nats
from .infra import Infra, display_url
from .logprefix import prefix
from .options import UpOptions
from .ports import free_port, port_is_free
from .supervisor import SUPERVISOR_NAME, ChildSpec, Supervisor, run_until_signalled

if TYPE_CHECKING:
    from .certs import CertSet

VTN_PATH = "/OpenADR2/Simple/2.0b"
NAME_WIDTH = 9  # the longest child name: "scheduler", "telemetry", "simulator"
HEALTH_REMINDER_EVERY = 30.0
DEMO_PREFIX = "demo-ven"
# round(N * rate) demo VENs answer optOut (simulator.load.opts_out): with --demo 3, demo-ven-2.
DEMO_OPT_OUT_RATE = 0.34
DEVELOPMENT_WARNING = (
    "DEVELOPMENT MODE: plain HTTP, open enrollment (a VEN is whoever claims its venName), no API tokens. "
    "Bound to {host}. For anything reachable by others use --secure (mutual TLS, provisioned VENs, API tokens).")


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


@dataclass(frozen=True)
class Secured:
    """What --secure adds: certificates, the admin token, the gateway's plain health port."""

    certs: "CertSet"
    token: str
    token_file: str
    health_port: int


@dataclass(frozen=True)
class HealthPorts:
    """The scheduler's and telemetry's /healthz, /readyz and /metrics (they serve no other HTTP)."""

    scheduler: int
    telemetry: int

    ENV = {"scheduler": "ADRSTACK_SCHEDULER_HEALTH_PORT", "telemetry": "ADRSTACK_TELEMETRY_HEALTH_PORT"}

    @classmethod
    def choose(cls, env: Mapping[str, str]) -> "HealthPorts":
        """The ports the environment sets, else free ones."""
        return cls(**{name: int(env.get(var) or 0) or free_port() for name, var in cls.ENV.items()})

    def urls(self) -> dict[str, str]:
        return {"scheduler": f"http://127.0.0.1:{self.scheduler}/readyz",
                "telemetry": f"http://127.0.0.1:{self.telemetry}/readyz"}


def demo_names(opts: UpOptions) -> list[str]:
    return [f"{DEMO_PREFIX}-{i}" for i in range(1, opts.demo + 1)]


def child_env(opts: UpOptions, base: Mapping[str, str], nats_url: str, database_url: str,
              secured: Secured | None = None, health: HealthPorts | None = None) -> dict[str, str]:
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
    if health is not None:
        # The supervisor checks them, and prints them, on this machine's loopback.
        env["ADRSTACK_HEALTH_HOST"] = "127.0.0.1"
        env.update({var: str(getattr(health, name)) for name, var in HealthPorts.ENV.items()})
    if secured is not None:
        certs = secured.certs
        env.update({
            "ADRSTACK_TLS_ECC_CERT": str(certs.vtn_ecc.cert), "ADRSTACK_TLS_ECC_KEY": str(certs.vtn_ecc.key),
            "ADRSTACK_TLS_RSA_CERT": str(certs.vtn_rsa.cert), "ADRSTACK_TLS_RSA_KEY": str(certs.vtn_rsa.key),
            "ADRSTACK_TLS_CA": str(certs.ca.cert),
            "ADRSTACK_ENROLLMENT": "provisioned",
            # The supervisor holds no client certificate: it checks the gateway on a local plain port.
            "ADRSTACK_HEALTH_HOST": "127.0.0.1",
            "ADRSTACK_HEALTH_PORT": str(secured.health_port),
            "ADRSTACK_API_AUTH": "true",
        })
    return env


def service_argv(service: Service) -> list[str]:
    return [sys.executable, "-m", service.module]


def vtn_url(opts: UpOptions, host: str) -> str:
    return f"{'https' if opts.secure else 'http'}://{host}:{opts.vtn_port}{VTN_PATH}"


def simulator_argv(opts: UpOptions, secured: Secured | None = None) -> list[str]:
    # The VTN certificates name localhost, and openleadr's VENs check the host name.
    host = "localhost" if secured is not None and local_host(opts.host) == "127.0.0.1" else local_host(opts.host)
    argv = [*service_argv(SIMULATOR), "--vens", str(opts.demo), "--vtn-url", vtn_url(opts, host),
            "--name-prefix", DEMO_PREFIX, "--opt-out-rate", str(DEMO_OPT_OUT_RATE)]
    if secured is not None:
        argv += ["--cert-dir", str(secured.certs.dir)]
    return argv


def banner(opts: UpOptions, nats_url: str, database_url: str, secured: Secured | None = None,
           subject_prefix: str = "openadr", health: HealthPorts | None = None) -> str:
    host = display_host(opts.host)
    lines = [
        "adrstack is up:",
        f"  VTN        {vtn_url(opts, host)}",
        f"  GraphQL    http://{host}:{opts.api_port}/graphql",
        f"  Dashboard  http://{host}:{opts.api_port}/",
        f"  NATS       {nats_url}",
        # The URL is explicit: another NATS on this machine's 4222 would otherwise be tailed silently.
        f"  Tail       nats sub -s {nats_url} '{subject_prefix}.>'",
        f"             adrstack tail --nats-url {nats_url} '{subject_prefix}.>'   (the same without the nats CLI)",
        f"  Database   {display_url(database_url)}",
    ]
    if health is not None:
        lines.append("  Health     " + "  ".join(f"{name} {url}" for name, url in health.urls().items()))
    if secured is not None:
        lines += [
            f"  Certs      {secured.certs.dir} (VENs need a certificate from ca.crt there: "
            f"adrstack certs --dir {secured.certs.dir} --ven NAME)",
            "  VENs must be provisioned before they register (GraphQL provisionVen, admin token)",
            f"API token: {secured.token}",
            f"  (admin; also in {secured.token_file}; send it as 'Authorization: Bearer <token>')",
        ]
    else:
        lines.append(DEVELOPMENT_WARNING.format(host=opts.host))
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


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


async def supervise(opts: UpOptions, env: Mapping[str, str], infra: Infra, out: TextIO) -> None:
    """Everything under one supervisor: the embedded servers (if any), then migrations, then the
    services; on SIGINT/SIGTERM, or a failure while starting, stop in reverse."""
    async def when_started(sup: Supervisor) -> None:
        await infra.start(sup)
        nats_url, database_url = infra.nats_url, infra.database_url
        sup.say("running database migrations")
        # Blocking calls in worker threads: they spawn nothing (see the supervisor's module doc).
        await asyncio.to_thread(migrate.upgrade, database_url)
        secured = await asyncio.to_thread(secure_setup, opts, database_url, sup.say) if opts.secure else None
        health = HealthPorts.choose(env)
        child = child_env(opts, env, nats_url, database_url, secured, health)
        # The one owner of the stream and the buckets; the services only bind to them.
        created, _ = await init_nats(nats_url, child)
        if created:
            sup.say("created on NATS: " + ", ".join(created))
        for service in SERVICES:
            sup.start(ChildSpec(service.name, service_argv(service), child))
        host = local_host(opts.host)
        gateway_health = (f"http://127.0.0.1:{secured.health_port}/health" if secured is not None
                          else f"http://{host}:{opts.vtn_port}/health")
        await wait_healthy(sup, {"gateway": gateway_health, "api": f"http://{host}:{opts.api_port}/health",
                                 **health.urls()})
        subject_prefix = child.get("ADRSTACK_SUBJECT_PREFIX") or "openadr"
        sup.say(banner(opts, nats_url, database_url, secured, subject_prefix, health))
        # For `adrstack tail` (and anyone else) on this machine; removed when up stops cleanly.
        endpoints.write(opts.data_dir, {
            "nats_url": nats_url, "database_url": display_url(database_url), "subject_prefix": subject_prefix,
            "vtn_url": vtn_url(opts, host), "graphql_url": f"http://{host}:{opts.api_port}/graphql",
            "health": {"gateway": gateway_health, "api": f"http://{host}:{opts.api_port}/health", **health.urls()}})
        if opts.demo:
            if secured is not None:
                from .secure import provision

                for name in demo_names(opts):
                    await asyncio.to_thread(provision, f"http://{host}:{opts.api_port}", secured.token, name,
                                            secured.certs.vens[name].fingerprint)
                sup.say(f"provisioned {opts.demo} simulated VEN certificate(s) through the API")
            sup.say(f"starting {opts.demo} simulated VEN(s)")
            sup.start(ChildSpec(SIMULATOR.name, simulator_argv(opts, secured), child))
            if opts.demo_event_in:
                from . import demo_event

                await demo_event.schedule(f"http://{host}:{opts.api_port}", demo_names(opts), opts.demo_event_in,
                                          sup.say, token=secured.token if secured is not None else None)

    await run_until_signalled(Supervisor(out, width=NAME_WIDTH), [], when_started)


def secure_setup(opts: UpOptions, database_url: str, say) -> Secured:
    from .secure import prepare

    hosts = [opts.host] if opts.host_given and opts.host not in ("", "0.0.0.0", "::") else []
    setup = prepare(opts.data_dir, database_url, demo_names(opts), hosts)
    if setup.certs.missing_host_names:
        say(f"warning: the VTN certificates in {setup.certs.dir} do not name "
            f"{', '.join(setup.certs.missing_host_names)}; remove vtn-ecc.* and vtn-rsa.* to reissue them")
    say(f"mutual TLS with the certificates in {setup.certs.dir}")
    return Secured(certs=setup.certs, token=setup.token, token_file=str(setup.token_file), health_port=free_port())


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
    try:
        infra = Infra(opts.data_dir, env, say)
        try:
            opts.data_dir.mkdir(parents=True, exist_ok=True)
            infra.prepare()
        except Interrupted:
            say("interrupted while starting; stopping")
            return 0
        except Exception as e:
            print(f"adrstack: could not start: {first_line(e)}", file=sys.stderr)
            return 1
        try:
            # From here on the supervisor's own signal handlers stop everything in order.
            asyncio.run(supervise(opts, env, infra, out))
        except Interrupted:  # a signal in the short gap before supervise() installed its handlers
            pass
        except Exception as e:  # starting failed; what had started is stopped already
            say("stopped")
            print(f"adrstack: could not start: {first_line(e)}", file=sys.stderr)
            return 1
        finally:
            endpoints.remove(opts.data_dir)
        say("stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
