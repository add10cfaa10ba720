"""The gateway process: NATS, the KV-backed registry, the events mirror and openleadr's VTN on aiohttp."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web
from nats.aio.client import Client as NATS
from openleadr import OpenADRServer

from adrstack.shared import jetstream

from .event_cache import EventCache
from .handlers import VtnHandlers
from .http_guard import guard_middleware
from .registry import Registry
from .settings import VTN_PATH, GatewaySettings

log = logging.getLogger(__name__)


class Gateway:
    """``await start()`` serves the VTN on settings.vtn_host:vtn_port (0 picks a free port, see
    ``port``); ``await stop()`` stops HTTP first, then drains NATS."""

    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self.nc: NATS | None = None
        self.events: EventCache | None = None
        self.registry: Registry | None = None
        self.runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def vtn_url(self) -> str:
        host = "127.0.0.1" if self.settings.vtn_host in ("0.0.0.0", "::") else self.settings.vtn_host
        return f"http://{host}:{self.port}{VTN_PATH}"

    async def start(self) -> None:
        s = self.settings
        self.nc = await jetstream.connect(s, name="adrstack-gateway")
        try:
            js = self.nc.jetstream()
            await jetstream.ensure_stream(js, s)
            self.registry = Registry(await jetstream.ensure_kv(js, s.vens_bucket))
            self.events = EventCache(await jetstream.ensure_kv(js, s.events_bucket))
            await self.events.start()

            server = OpenADRServer(
                vtn_id=s.vtn_id,
                http_host=s.vtn_host,
                http_port=s.vtn_port,
                requested_poll_freq=timedelta(seconds=s.poll_interval),
            )
            VtnHandlers(s, js, self.registry, self.events).install(server)

            # Our own aiohttp app around openleadr's service handlers: its body limit and the
            # guard middleware must apply before openleadr reads a byte.
            app = web.Application(
                client_max_size=s.max_body_bytes,
                middlewares=[guard_middleware(s.max_body_bytes, VTN_PATH)],
            )
            app.add_routes([web.post(f"{VTN_PATH}/{svc.__service_name__}", svc.handler)
                            for svc in server.services.values()])
            app.add_routes([web.get("/health", self.health)])
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, host=s.vtn_host, port=s.vtn_port)
            await site.start()
            self.port = self.runner.addresses[0][1]
        except BaseException:
            await self.stop()
            raise
        log.info("VTN %s bound to %s:%s; local URL %s", s.vtn_id, s.vtn_host, self.port, self.vtn_url)

    async def health(self, request: web.Request) -> web.Response:
        nats_ok = bool(self.nc and self.nc.is_connected)
        body = {"status": "ok" if nats_ok else "unavailable", "nats": "connected" if nats_ok else "disconnected",
                "events": len(self.events) if self.events else 0}
        return web.json_response(body, status=200 if nats_ok else 503)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.events is not None:
            await self.events.stop()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception as e:
                log.warning("NATS drain failed: %s", e)
                await self.nc.close()
