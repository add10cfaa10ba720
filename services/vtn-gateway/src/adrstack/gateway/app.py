"""The gateway process: NATS, the VEN and event mirrors, the handlers and the HTTP server."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from nats.aio.client import Client as NATS

from adrstack.shared import jetstream
from adrstack.shared.health import JSON, liveness
from adrstack.shared.metrics import CONTENT_TYPE
from adrstack.shared.subjects import REPORT_COMMANDS, VEN_ACTIONS

from .codec.schema import schema
from .commands import QUEUE_GROUP, VenCommands
from .events import EventBook
from .handlers import Handlers
from .codec.signature import Signer
from .identity import Provisioning
from .message_auth import MessageAuth
from .observability import GatewayMetrics
from .publisher import FactPublisher
from .push import Pusher
from .report_commands import ReportCommands
from .replay import NonceStore
from .server import VtnServer
from .settings import VTN_PATH, GatewaySettings
from .state import VenStore
from .tls import client_context, server_context

log = logging.getLogger(__name__)


class Gateway:
    """``await start()`` serves the VTN on settings.vtn_host:vtn_port (0 picks a free port, see
    ``port``); ``await stop()`` stops HTTP first, then drains NATS."""

    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self.nc: NATS | None = None
        self.store: VenStore | None = None
        self.events: EventBook | None = None
        self.server: VtnServer | None = None
        self.provisioning: Provisioning | None = None
        self.health_runner: web.AppRunner | None = None
        self.pusher: Pusher | None = None
        self.publisher: FactPublisher | None = None
        self.port: int | None = None
        self.metrics = GatewayMetrics()
        self.metrics.add_state(self)

    @property
    def vtn_url(self) -> str:
        host = "127.0.0.1" if self.settings.vtn_host in ("0.0.0.0", "::") else self.settings.vtn_host
        return f"{'https' if self.settings.tls else 'http'}://{host}:{self.port}{VTN_PATH}"

    async def start(self) -> None:
        s = self.settings
        check_security(s)
        # Certificates are read before anything connects: a missing file is a clear start-up error.
        try:
            ssl = server_context(s.tls_ecc_cert, s.tls_ecc_key, s.tls_rsa_cert, s.tls_rsa_key, s.tls_ca) if s.tls else None
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            raise SecurityConfigError(f"cannot load the TLS certificates: {e}") from e
        try:
            # Pushes to VENs go out with the VTN's certificate and verify theirs against the CA.
            push_ssl = client_context(s.tls_ecc_cert or s.tls_rsa_cert, s.tls_ecc_key or s.tls_rsa_key,
                                      s.tls_ca) if s.tls else None
        except (OSError, ValueError) as e:
            raise SecurityConfigError(f"cannot load the TLS certificates for pushing to VENs: {e}") from e
        try:
            signer = Signer.from_files(s.sign_cert, s.sign_key) if s.sign_cert else None
        except (OSError, ValueError) as e:
            raise SecurityConfigError(f"cannot load the signing certificate and key: {e}") from e
        self.nc = await jetstream.connect(s, name="adrstack-gateway")
        try:
            # Load the XSD now (~0.3 s, several MB) rather than on the first VEN's request.
            schema()
            js = self.nc.jetstream()
            await jetstream.bind_stream(js, s)
            vens = await jetstream.bind_kv(js, s.vens_bucket)
            self.events = EventBook(await jetstream.bind_kv(js, s.events_bucket),
                                    await jetstream.bind_kv(js, s.groups_bucket),
                                    await jetstream.bind_kv(js, s.programs_bucket))
            self.store = VenStore(vens, on_reports_change=self.events.reports_changed)
            self.events.follow_reports(self.store.reports.mirror)
            await self.store.start()
            await self.events.start()
            if s.enrollment == "provisioned":
                self.provisioning = Provisioning(await jetstream.bind_kv(js, s.provisioning_bucket))
                await self.provisioning.start()
            commands = VenCommands(self.store)
            for action in VEN_ACTIONS:
                await self.nc.subscribe(s.subjects.cmd_ven(action), queue=QUEUE_GROUP, cb=commands.callback(action))
            self.publisher = FactPublisher(self.nc)
            await self.publisher.start()
            handlers = Handlers(s, self.nc, js, self.store, self.events, self.provisioning, publisher=self.publisher,
                                metrics=self.metrics)
            reports = ReportCommands(self.store, handlers.report_request_facts)
            for verb in REPORT_COMMANDS:
                await self.nc.subscribe(s.subjects.cmd_report(verb), queue=QUEUE_GROUP, cb=reports.callback(verb))
            try:
                nonces = await NonceStore.bind(self.nc, s.nonces_bucket, s.replay_window)
            except ValueError as e:
                raise SecurityConfigError(str(e)) from e
            auth = MessageAuth(nonces, require=s.require_signatures, signer=signer)
            self.server = VtnServer(handlers, auth, path=VTN_PATH, max_body_bytes=s.max_body_bytes,
                                    header_timeout=s.header_timeout, body_timeout=s.body_timeout,
                                    keepalive_timeout=s.keepalive_timeout, vtn_id=s.vtn_id,
                                    extra_routes=self.probe_routes())
            await self.server.start(s.vtn_host, s.vtn_port, ssl=ssl, reuse_port=s.reuse_port)
            self.port = self.server.port
            self.pusher = Pusher(s, self.store, self.events, handlers, auth, ssl_context=push_ssl)
            await self.pusher.start()
            if s.health_port is not None:
                await self._serve_health(s.health_host, s.health_port)
        except BaseException:
            await self.stop()
            raise
        log.info("VTN %s bound to %s:%s; local URL %s; %s; enrollment %s", s.vtn_id, s.vtn_host, self.port,
                 self.vtn_url, "mutual TLS" if s.tls else "plain HTTP", s.enrollment)
        if not s.tls or s.enrollment == "open":
            log.warning("development mode: %s%s", "" if s.tls else "plain HTTP, no client certificates; ",
                        "open enrollment trusts venNames as given" if s.enrollment == "open" else "")

    def health_status(self) -> tuple[int, dict]:
        nats_ok = bool(self.nc and self.nc.is_connected)
        body = {"status": "ok" if nats_ok else "unavailable", "nats": "connected" if nats_ok else "disconnected",
                "events": len(self.events) if self.events else 0,
                "vens": len(self.store.vens.mirror) if self.store else 0,
                # Requests refused since start, by reason (each is logged at DEBUG only).
                "refused": dict(self.server.refused) if self.server else {}}
        return (200 if nats_ok else 503), body

    def probe_routes(self) -> dict:
        """GET routes for probes and scrapers, the same on the VTN port and the health port:
        /health and /readyz (200 when NATS is connected; the gateway uses no Postgres), /healthz
        (the process answers) and /metrics."""
        async def ready(_request) -> tuple[int, str, bytes]:
            status, body = self.health_status()
            return status, JSON, json.dumps(body).encode()

        async def alive(_request) -> tuple[int, str, bytes]:
            return liveness()

        async def metrics(_request) -> tuple[int, str, bytes]:
            return 200, CONTENT_TYPE, self.metrics.registry.render()

        return {"/health": ready, "/readyz": ready, "/healthz": alive, "/metrics": metrics}

    async def _serve_health(self, host: str, port: int) -> None:
        def aiohttp_route(route):
            async def handler(request: web.Request) -> web.Response:
                status, content_type, body = await route(request)
                return web.Response(status=status, body=body, headers={"Content-Type": content_type})
            return handler

        app = web.Application()
        app.add_routes([web.get(path, aiohttp_route(route)) for path, route in self.probe_routes().items()])
        self.health_runner = web.AppRunner(app, access_log=None)
        await self.health_runner.setup()
        await web.TCPSite(self.health_runner, host, port, reuse_port=self.settings.reuse_port or None).start()

    async def stop(self) -> None:
        if self.health_runner is not None:
            await self.health_runner.cleanup()
            self.health_runner = None
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self.pusher is not None:
            await self.pusher.stop()
            self.pusher = None
        if self.publisher is not None:  # after HTTP: requests still answering have had their acks
            await self.publisher.stop()
            self.publisher = None
        for part in (self.provisioning, self.events, self.store):
            if part is not None:
                await part.stop()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception as e:
                log.warning("NATS drain failed: %s", e)
                await self.nc.close()


class SecurityConfigError(ValueError):
    """Security settings the gateway refuses to start with (said in one line, no traceback)."""


def check_security(s: GatewaySettings) -> None:
    """Refuse settings that would look secure and not be."""
    for cert, key, what in ((s.tls_ecc_cert, s.tls_ecc_key, "ECC"), (s.tls_rsa_cert, s.tls_rsa_key, "RSA")):
        if bool(cert) != bool(key):
            raise SecurityConfigError(f"the {what} certificate and key go together: set both or neither")
    if s.tls and not s.tls_ca:
        raise SecurityConfigError("TLS needs ADRSTACK_TLS_CA: the CA that issues VEN (client) certificates")
    if s.enrollment == "provisioned" and not s.tls:
        raise SecurityConfigError("provisioned enrollment identifies VENs by their client certificates: "
                                    "set the TLS certificates (ADRSTACK_TLS_ECC_CERT/_KEY and/or _RSA_) and ADRSTACK_TLS_CA")
    if bool(s.sign_cert) != bool(s.sign_key):
        raise SecurityConfigError("the signing certificate and key go together: set both or neither")
