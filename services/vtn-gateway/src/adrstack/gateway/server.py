"""HTTP for the VTN: aiohttp routes per 2.0b service, slow clients cut off, bad input answered right.

What each failure gets (the body is always generic; parser output never reaches the caller):
- wrong Content-Type: 415; body over the limit: 413; body not complete within
  ``body_timeout``: 408; request headers not complete within ``header_timeout``: the
  connection is closed;
- not XML we can read (hostile, malformed, not 2.0b, a message only a VTN sends): 400;
- a 2.0b message on the wrong service's URL: OpenADR 459;
- a valid message with a value we cannot use: OpenADR 454 (InvalidContent);
- whatever the handlers refuse: their OpenADR code, in the response type 2.0b pairs with
  the request (oadrCreatedPartyRegistration for a registration, ...).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .codec import HostileXml, InvalidContent, MalformedXml, parse, render
from .codec import model as m
from .errors import COMPLIANCE_ERROR, OpenAdrError
from .handlers import Handlers
from .message_auth import MessageAuth
from .tls import peer_fingerprint

log = logging.getLogger(__name__)

XML_TYPES = ("application/xml", "text/xml")

# Which messages each 2.0b service endpoint takes (oadrResponse: any of them).
SERVICES: dict[str, tuple[type, ...]] = {
    "EiRegisterParty": (m.QueryRegistration, m.CreatePartyRegistration, m.CancelPartyRegistration,
                        m.CanceledPartyRegistration),
    "EiEvent": (m.RequestEvent, m.CreatedEvent),
    "EiReport": (m.RegisterReport, m.RegisteredReport, m.UpdateReport, m.CreatedReport, m.CanceledReport,
                 m.CancelReport, m.CreateReport),
    "EiOpt": (m.CreateOpt, m.CancelOpt),
    "OadrPoll": (m.Poll,),
}


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


class HeaderDeadlines:
    """Connections waiting for a request's headers, oldest first, and the sweep that cuts off those
    waiting longer than ``timeout``. One sweep timer for all of them, rather than a timer per
    request: arming and cancelling one costs more than the rest of the guard on every poll."""

    def __init__(self, timeout: float, refused: collections.Counter):
        self.timeout = timeout
        self.waiting: dict[SlowClientGuard, float] = {}  # insertion order is start order
        self.refused = refused
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.timeout / 4)
        while True:
            await asyncio.sleep(interval)
            self.sweep(loop.time())

    def sweep(self, now: float) -> None:
        expired = []
        for conn, since in self.waiting.items():
            if now - since < self.timeout:
                break
            expired.append(conn)
        for conn in expired:
            self.waiting.pop(conn, None)
            self.refused["slow_headers"] += 1
            conn.headers_too_slow()


class SlowClientGuard(RequestHandler):
    """aiohttp's connection handler, closing connections whose request headers do not arrive
    within the deadline of their first byte (or of connecting): slowloris and idle sockets.
    Bodies are timed by the route handler. Uses aiohttp's per-connection request counter and
    in-progress flag; aiohttp is pinned below 4."""

    __slots__ = ("_deadlines", "peer")

    def __init__(self, manager, *, deadlines: HeaderDeadlines, **kwargs):
        super().__init__(manager, **kwargs)
        self._deadlines = deadlines
        self.peer: str | None = None  # the client certificate's 2.0b fingerprint (TLS only)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Called once the TLS handshake is done: the certificate is fixed for the connection.
        self.peer = peer_fingerprint(transport.get_extra_info("ssl_object"))
        self._deadlines.waiting[self] = self._loop.time()  # one that never sends a byte is cut off too

    def data_received(self, data: bytes) -> None:
        waiting = self._deadlines.waiting
        if not self._request_in_progress and self not in waiting:
            waiting[self] = self._loop.time()
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            waiting.pop(self, None)

    def headers_complete(self) -> None:
        self._deadlines.waiting.pop(self, None)

    def headers_too_slow(self) -> None:
        if self.transport is not None:
            log.debug("closing a connection whose request headers took over %.0fs", self._deadlines.timeout)
            self.force_close()  # closes the transport

    def connection_lost(self, exc: BaseException | None) -> None:
        self._deadlines.waiting.pop(self, None)
        super().connection_lost(exc)


class VtnServer:
    def __init__(self, handlers: Handlers, auth: MessageAuth, *, path: str, max_body_bytes: int,
                 header_timeout: float, body_timeout: float, keepalive_timeout: float, vtn_id: str,
                 extra_routes: list[web.RouteDef] = ()):
        self.handlers = handlers
        self.auth = auth
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.keepalive_timeout = keepalive_timeout
        self.vtn_id = vtn_id
        self.app = web.Application(client_max_size=max_body_bytes)
        self.app.add_routes([web.post(f"{path}/{service}", self._route(service)) for service in SERVICES])
        self.app.add_routes(list(extra_routes))
        self.runner: web.AppRunner | None = None
        self.server: asyncio.AbstractServer | None = None
        # Refused requests by reason, for /health: logging each would let a flood fill the disk.
        self.refused: collections.Counter[str] = auth.refused
        self.deadlines = HeaderDeadlines(header_timeout, self.refused)

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int, ssl=None, reuse_port: bool = False) -> None:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        manager = self.runner.server
        loop = asyncio.get_running_loop()
        self.deadlines.start()
        self.server = await loop.create_server(
            lambda: SlowClientGuard(manager, loop=loop, deadlines=self.deadlines,
                                    keepalive_timeout=self.keepalive_timeout, access_log=None),
            host=host, port=port, ssl=ssl, reuse_address=True, reuse_port=reuse_port or None, backlog=1024,
            # A client that never finishes its handshake is cut off like one that never sends headers.
            **({"ssl_handshake_timeout": self.deadlines.timeout} if ssl is not None else {}))

    async def stop(self) -> None:
        await self.deadlines.stop()
        if self.server is not None:
            self.server.close()  # no new connections
        if self.runner is not None:
            await self.runner.cleanup()  # finishes and closes the open ones
            self.runner = None
        if self.server is not None:
            # Since Python 3.12 this waits for every connection, hence after the cleanup.
            await self.server.wait_closed()
            self.server = None

    # ------------------------------------------------------------------ requests

    def _route(self, service: str):
        accepted = SERVICES[service] + (m.Response,)

        async def serve(request: web.Request) -> web.StreamResponse:
            started = time.monotonic()
            protocol = request.protocol
            peer = None
            if isinstance(protocol, SlowClientGuard):
                protocol.headers_complete()
                peer = protocol.peer
            content_type = request.headers.get("Content-Type", "")
            if content_type != "application/xml" and content_type.partition(";")[0].strip().lower() not in XML_TYPES:
                self.refused["content_type"] += 1
                return _plain(415, "Content-Type must be application/xml")
            if request.content_length is not None and request.content_length > self.max_body_bytes:
                self.refused["too_large"] += 1
                return _plain(413, f"body larger than {self.max_body_bytes} bytes")
            try:
                if request.content.is_eof():
                    body = await request.read()  # all there already (every ordinary poll)
                else:
                    body = await asyncio.wait_for(request.read(), self.body_timeout)
            except web.HTTPRequestEntityTooLarge:
                self.refused["too_large"] += 1
                return _plain(413, f"body larger than {self.max_body_bytes} bytes")
            except asyncio.TimeoutError:
                self.refused["slow_body"] += 1
                log.debug("request body not complete within %.0fs; closing", self.body_timeout)
                response = _plain(408, "request body too slow")
                response.force_close()
                return response
            except ConnectionError:
                # The client went away mid-body: nobody to answer. aiohttp drops the connection
                # quietly when writing this response fails.
                log.debug("client left before its request body was complete")
                response = _plain(400, "request body incomplete")
                response.force_close()
                return response
            try:
                envelope = parse(body)
            except HostileXml as e:
                self.refused["hostile_xml"] += 1
                log.debug("refused XML from %s: %s", request.remote, e)
                return _plain(400, str(e))
            except MalformedXml as e:
                self.refused["unreadable_xml"] += 1
                log.debug("unreadable XML from %s: %s (%s)", request.remote, e, e.detail[:200])
                return _plain(400, str(e))
            except InvalidContent as e:
                self.refused["invalid_value"] += 1
                return self._xml(self.auth.sign(render.error_answer(e.message_type, 454, e.description, vtn_id=self.vtn_id,
                                                     request_id=e.request_id, ven_id=e.ven_id, opt_id=e.opt_id)))
            message = envelope.message
            try:
                await self.auth.check(envelope, peer)
                if not isinstance(message, accepted):
                    raise OpenAdrError(COMPLIANCE_ERROR,
                                       f"{envelope.message_type} is not a message of the {service} service")
                answer = await self.handlers.handle(message, peer)
            except OpenAdrError as e:
                answer = render.error_answer(envelope.message_type, e.code, e.description, vtn_id=self.vtn_id,
                                             request_id=getattr(message, "request_id", "") or "",
                                             ven_id=getattr(message, "ven_id", None),
                                             opt_id=getattr(message, "opt_id", None))
            except Exception:
                log.exception("error answering %s (%.1f ms in)", envelope.message_type,
                              (time.monotonic() - started) * 1000)
                return _plain(500, "internal error")
            if answer is None:
                return web.Response(status=200)
            return self._xml(self.auth.sign(answer))

        return serve

    @staticmethod
    def _xml(body: bytes) -> web.Response:
        return web.Response(body=body, content_type="application/xml")
