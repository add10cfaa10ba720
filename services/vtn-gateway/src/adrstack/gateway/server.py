"""The VTN's routes (a POST URL per 2.0b service, and GET routes such as /health) on http.Listener,
slow clients cut off, bad input answered right.

What each failure gets (the body is always generic; parser output never reaches the caller):
- wrong Content-Type: 415; body over the limit: 413; body not complete within
  ``body_timeout``: 408 (and close); request headers not complete within ``header_timeout``: the
  connection is closed; malformed HTTP: 400 (and close); an unknown path: 404; a wrong method: 405;
- not XML we can read (hostile, malformed, not 2.0b, a message only a VTN sends): 400;
- a 2.0b message on the wrong service's URL: OpenADR 459;
- a valid message with a value we cannot use: OpenADR 454 (InvalidContent);
- whatever the handlers refuse: their OpenADR code, in the response type 2.0b pairs with
  the request (oadrCreatedPartyRegistration for a registration, ...).
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Awaitable, Callable, Mapping

from .codec import HostileXml, InvalidContent, MalformedXml, parse, render
from .codec import model as m
from .errors import COMPLIANCE_ERROR, OpenAdrError
from .handlers import Handlers
from .http import Answer, BodyTooLarge, Listener, Request
from .message_auth import MessageAuth

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


TEXT = "text/plain; charset=utf-8"
XML = "application/xml"


def _plain(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return status, TEXT, (text + "\n").encode(), headers


# An async handler of a GET route beside the services (/health): returns (status, content type, body).
Handler = Callable[[Request], Awaitable[tuple[int, str, bytes]]]


class VtnServer:
    def __init__(self, handlers: Handlers, auth: MessageAuth, *, path: str, max_body_bytes: int,
                 header_timeout: float, body_timeout: float, keepalive_timeout: float, vtn_id: str,
                 extra_routes: Mapping[str, Handler] = {}):
        self.handlers = handlers
        self.auth = auth
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.vtn_id = vtn_id
        # path -> (methods, answering coroutine)
        self.routes: dict[str, tuple[tuple[str, ...], Callable[[Request], Awaitable[Answer]]]] = {
            f"{path}/{service}": (("POST",), self._route(service)) for service in SERVICES}
        for route, handler in extra_routes.items():
            self.routes[route] = (("GET", "HEAD"), self._get(handler))
        # Refused requests by reason, for /health: logging each would let a flood fill the disk.
        self.refused: collections.Counter[str] = auth.refused
        self.listener = Listener(self.serve, max_body_bytes=max_body_bytes, header_timeout=header_timeout,
                                 keepalive_timeout=keepalive_timeout, refused=self.refused)

    @property
    def port(self) -> int:
        return self.listener.port

    async def start(self, host: str, port: int, ssl=None, reuse_port: bool = False) -> None:
        await self.listener.start(host, port, ssl=ssl, reuse_port=reuse_port)

    async def stop(self) -> None:
        """Stops accepting, answers the requests in progress, closes every connection."""
        await self.listener.stop()

    async def serve(self, request: Request) -> Answer:
        route = self.routes.get(request.path)
        if route is None:
            return _plain(404, "404: Not Found")
        methods, answer = route
        if request.method not in methods:
            return _plain(405, "405: Method Not Allowed", (("Allow", ", ".join(methods)),))
        return await answer(request)

    @staticmethod
    def _get(handler: Handler):
        async def answer(request: Request) -> Answer:
            status, content_type, body = await handler(request)
            return status, content_type, body, ()

        return answer

    # ------------------------------------------------------------------ requests

    def _route(self, service: str):
        accepted = SERVICES[service] + (m.Response,)

        async def serve(request: Request) -> Answer:
            started = time.monotonic()
            peer = request.peer
            content_type = request.content_type
            if content_type != "application/xml" and content_type.partition(";")[0].strip().lower() not in XML_TYPES:
                self.refused["content_type"] += 1
                return _plain(415, "Content-Type must be application/xml")
            if request.content_length is not None and request.content_length > self.max_body_bytes:
                self.refused["too_large"] += 1
                return _plain(413, f"body larger than {self.max_body_bytes} bytes")
            try:
                body = await request.read(self.body_timeout)
            except BodyTooLarge:
                self.refused["too_large"] += 1
                return _plain(413, f"body larger than {self.max_body_bytes} bytes")
            except TimeoutError:
                self.refused["slow_body"] += 1
                log.debug("request body not complete within %.0fs; closing", self.body_timeout)
                request.keep_alive = False
                return _plain(408, "request body too slow")
            except ConnectionError:
                # The client went away mid-body (nobody to answer), or its chunked body was malformed.
                log.debug("request body incomplete: the client left or the body was malformed")
                request.keep_alive = False
                return _plain(400, "request body incomplete")
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
                return 200, XML, self.auth.sign(render.error_answer(e.message_type, 454, e.description, vtn_id=self.vtn_id,
                                                    request_id=e.request_id, ven_id=e.ven_id, opt_id=e.opt_id)), ()
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
                return 200, "application/octet-stream", b"", ()
            return 200, XML, self.auth.sign(answer), ()

        return serve

