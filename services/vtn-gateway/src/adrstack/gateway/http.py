"""HTTP/1.1 for the VTN listener: an asyncio Protocol on httptools (llhttp), no web framework.

aiohttp's request machinery (Request/Response objects, StreamReader, router, writer) cost about a
quarter of the gateway's CPU under report ingest. The VTN needs little of it: short POSTs with a
body, answered whole. What this module does, and what it leaves to ``app`` (server.py):

- one request at a time per connection, in order (pipelined requests wait their turn, and reading
  pauses when too many are queued); connections concurrently. ``app(request)`` returns
  ``(status, content_type, body, headers)``; an exception is a 500;
- bodies are buffered up to ``max_body_bytes`` (beyond that the request is ``too_large`` and the
  rest is dropped, whether announced by Content-Length or sent chunked); ``request.read(timeout)``
  waits for the rest of the body, raising TimeoutError, BodyTooLarge or ConnectionError;
- request headers must be complete within ``header_timeout`` of their first byte (or of
  connecting), an idle keep-alive connection is closed after ``keepalive_timeout``: both by one
  sweep timer each (Deadlines), not a timer per request;
- malformed HTTP, an Upgrade, a request line or header over 8190 bytes, a head over 64 KiB: 400
  and close;
- an answer given before its body arrived (415, 413, ...): the rest of the body is read and
  dropped for up to LINGER seconds, then the connection goes on (or is closed if it did not come).
  Closing at once would reset a connection the client is still writing to, and the client might
  never read the answer;
- ``stop()``: no new connections, idle ones closed, requests in progress answered (with
  ``Connection: close``) within ``shutdown_timeout``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from http import HTTPStatus
from typing import Awaitable, Callable

import httptools

from .tls import peer_fingerprint

log = logging.getLogger(__name__)

MAX_LINE = 8190  # a request line or one header, as aiohttp allowed
MAX_HEAD = 65536  # all of a request's head
MAX_HEADERS = 100
PIPELINE_DEPTH = 8  # complete requests queued on one connection before it stops being read
LINGER = 5.0

# (status, content type, body, extra headers as (name, value) pairs)
Answer = tuple[int, str, bytes, tuple[tuple[str, str], ...]]
App = Callable[["Request"], Awaitable[Answer]]

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\n"
                b"Connection: close\r\n\r\nbad request\n")


class BodyTooLarge(Exception):
    pass


class _Malformed(Exception):
    pass


class Request:
    __slots__ = ("method", "path", "content_type", "content_length", "keep_alive", "http10", "expect_continue",
                 "peer", "complete", "too_large", "failed", "_conn", "_chunks", "_size", "_waiter", "_discard")

    def __init__(self, conn: Connection, method: str, path: str, content_type: str, content_length: int | None,
                 keep_alive: bool, http10: bool, expect_continue: bool):
        self._conn = conn
        self.method = method
        self.path = path
        self.content_type = content_type
        self.content_length = content_length
        self.keep_alive = keep_alive  # the app sets it False to close the connection after answering
        self.http10 = http10
        self.expect_continue = expect_continue
        self.peer = conn.peer
        self.complete = False
        self.too_large = content_length is not None and content_length > conn.listener.max_body_bytes
        self.failed = False  # the connection was lost or the body was malformed
        self._chunks: list[bytes] = []
        self._size = 0
        self._waiter: asyncio.Future | None = None
        self._discard = False

    @property
    def remote(self) -> str | None:
        peername = self._conn.transport.get_extra_info("peername") if self._conn.transport else None
        return peername[0] if peername else None

    async def read(self, timeout: float) -> bytes:
        """The whole body, waiting up to ``timeout`` for the rest of it (no wait, no timer, when it is
        all there: every ordinary request). BodyTooLarge over max_body_bytes; TimeoutError;
        ConnectionError if the client left or the body was malformed."""
        if not self.complete and not self.too_large:
            if self.expect_continue:
                self.expect_continue = False
                self._conn.write(_CONTINUE)
            await self._wait(timeout)
        if self.too_large:
            raise BodyTooLarge()
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _wait(self, timeout: float) -> None:
        """Until the body is complete (or too large): TimeoutError after ``timeout``; ConnectionError
        if the client left or the body was malformed."""
        if self.failed:
            raise ConnectionError("request body incomplete")
        if self.complete or self.too_large:
            return
        loop = self._conn.listener.loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake(self, exc: BaseException | None = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Deadlines:
    """Connections in one waiting state, oldest first, and the sweep that calls ``expire`` on those
    waiting longer than ``timeout``. One sweep timer for all of them, rather than a timer per
    request: arming and cancelling one costs more than the rest of the guard on every poll."""

    def __init__(self, timeout: float, expire: Callable[[Connection], None]):
        self.timeout = timeout
        self.expire = expire
        self.waiting: dict[Connection, float] = {}  # insertion order is start order
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
            self.expire(conn)


class Listener:
    """The listening socket and its connections."""

    def __init__(self, app: App, *, max_body_bytes: int, header_timeout: float, keepalive_timeout: float,
                 refused: collections.Counter, shutdown_timeout: float = 10.0):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.refused = refused
        self.shutdown_timeout = shutdown_timeout
        self.heads = Deadlines(header_timeout, self._headers_too_slow)
        self.idle = Deadlines(keepalive_timeout, self._idle_too_long)
        self.connections: set[Connection] = set()
        self.stopping = False
        self.server: asyncio.AbstractServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int, ssl=None, reuse_port: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.heads.start()
        self.idle.start()
        self.server = await self.loop.create_server(
            lambda: Connection(self), host=host, port=port, ssl=ssl, reuse_address=True,
            reuse_port=reuse_port or None, backlog=1024,
            # A client that never finishes its handshake is cut off like one that never sends headers.
            **({"ssl_handshake_timeout": self.heads.timeout} if ssl is not None else {}))

    async def stop(self) -> None:
        self.stopping = True
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            if conn.task is None:  # nothing to finish: idle, or a request still arriving
                conn.close()
        busy = [conn.task for conn in self.connections if conn.task is not None]
        if busy:
            _, late = await asyncio.wait(busy, timeout=self.shutdown_timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d requests not answered within %.0fs of stopping", len(late), self.shutdown_timeout)
                await asyncio.wait(late)
        for conn in list(self.connections):
            conn.close()
        await self.heads.stop()
        await self.idle.stop()
        if self.server is not None:
            await self.server.wait_closed()
            self.server = None

    def _headers_too_slow(self, conn: Connection) -> None:
        self.refused["slow_headers"] += 1
        log.debug("closing a connection whose request headers took over %.0fs", self.heads.timeout)
        conn.close()

    @staticmethod
    def _idle_too_long(conn: Connection) -> None:
        conn.close()


class Connection(asyncio.Protocol):
    """One client connection; also the httptools parser's callbacks (on_*)."""

    def __init__(self, listener: Listener):
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None  # the client certificate's 2.0b fingerprint (TLS only)
        self.parser = httptools.HttpRequestParser(self)
        self.queue: collections.deque[Request | None] = collections.deque()  # None: a malformed one
        self.task: asyncio.Task | None = None
        self.current: Request | None = None  # the request whose body the parser is reading
        self.in_head = False
        self.head_bytes = 0
        self.closed = False
        self.broken = False  # malformed input: nothing more is parsed
        self.reading_paused = False
        self.drained: asyncio.Future | None = None  # while the transport's write buffer is full
        self._url = b""
        self._headers = 0
        self._content_type = ""
        self._content_length: int | None = None
        self._expect_continue = False

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        # Called once the TLS handshake is done: the certificate is fixed for the connection.
        self.peer = peer_fingerprint(transport.get_extra_info("ssl_object"))
        self.listener.connections.add(self)
        # One that never sends a byte is cut off too.
        self.listener.heads.waiting[self] = self.listener.loop.time()

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        listener = self.listener
        listener.idle.waiting.pop(self, None)
        if self.current is None:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:  # also an exception raised by an on_* callback
            log.debug("malformed HTTP request: %s", e)
            self._malformed()
            return
        if self.in_head and self.head_bytes > MAX_HEAD:
            self._malformed()
        elif len(self.queue) > PIPELINE_DEPTH:
            self.transport.pause_reading()
            self.reading_paused = True

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        listener = self.listener
        listener.heads.waiting.pop(self, None)
        listener.idle.waiting.pop(self, None)
        listener.connections.discard(self)
        request = self.current
        if request is not None and not request.complete:
            request.failed = True
            request._wake(ConnectionError("client left before its request body was complete"))
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def pause_writing(self) -> None:
        if self.drained is None or self.drained.done():
            self.drained = self.listener.loop.create_future()

    def resume_writing(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    # ------------------------------------------------------------------ parser callbacks

    def on_message_begin(self) -> None:
        waiting = self.listener.heads.waiting
        if self not in waiting:
            waiting[self] = self.listener.loop.time()
        self.in_head = True
        self._url = b""
        self._headers = 0
        self._content_type = ""
        self._content_length = None
        self._expect_continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_LINE:
            raise _Malformed("request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        if len(name) + len(value) > MAX_LINE or self._headers > MAX_HEADERS:
            raise _Malformed("header too long or too many headers")
        name = name.lower()
        if name == b"content-type":
            self._content_type = value.decode("latin-1")
        elif name == b"content-length":
            self._content_length = int(value)  # llhttp has checked it is digits
        elif name == b"expect":
            self._expect_continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        parser = self.parser
        if parser.should_upgrade():
            raise _Malformed("upgrade requested")  # llhttp would skip its body
        self.listener.heads.waiting.pop(self, None)
        self.in_head = False
        self.head_bytes = 0
        url = self._url
        if not url.startswith(b"/"):  # absolute form, or "*"
            url = httptools.parse_url(url).path or b""
        path = url.partition(b"?")[0].decode("latin-1")
        request = Request(self, parser.get_method().decode("latin-1"), path, self._content_type,
                          self._content_length, parser.should_keep_alive(), parser.get_http_version() == "1.0",
                          self._expect_continue)
        self.current = request
        self.queue.append(request)
        if self.task is None:
            self.task = self.listener.loop.create_task(self._serve())

    def on_body(self, body: bytes) -> None:
        request = self.current
        if request.too_large or request._discard:
            return
        request._size += len(body)
        if request._size > self.listener.max_body_bytes:
            request.too_large = True
            request._chunks = []
            request._wake()
        else:
            request._chunks.append(body)

    def on_message_complete(self) -> None:
        request = self.current
        self.current = None
        request.complete = True
        request._wake()

    # ------------------------------------------------------------------ answering

    def _malformed(self) -> None:
        self.broken = True
        self.in_head = False
        self.listener.heads.waiting.pop(self, None)
        if not self.closed:
            self.transport.pause_reading()
        request = self.current
        if request is not None:  # its body was malformed: answered by the app as a client that left
            self.current = None
            request.failed = True
            request._wake(ConnectionError("malformed request body"))
        elif self.queue:
            self.queue.append(None)  # answered 400 in its turn
        else:
            self.write(_BAD_REQUEST)
            self.close()

    async def _serve(self) -> None:
        """Answers the queued requests in order, then marks the connection idle."""
        queue = self.queue
        listener = self.listener
        try:
            while queue:
                request = queue[0]
                if request is None:
                    self.write(_BAD_REQUEST)
                    self.close()
                    return
                try:
                    status, content_type, body, headers = await listener.app(request)
                except Exception:
                    log.exception("error answering %s %s", request.method, request.path)
                    status, content_type, body, headers = 500, "text/plain; charset=utf-8", b"internal error\n", ()
                if self.closed:
                    return
                keep_alive = request.keep_alive and not (listener.stopping or request.failed)
                self._respond(request, status, content_type, body, headers, keep_alive)
                if keep_alive and not request.complete:
                    request._discard = True
                    request._chunks = []
                    try:
                        await request._wait(LINGER)
                    except (TimeoutError, ConnectionError):
                        keep_alive = False
                    if listener.stopping:
                        keep_alive = False
                queue.popleft()
                if not keep_alive:
                    self.close()
                    return
                if self.drained is not None:
                    await self.drained  # the client is not reading its answers
                    self.drained = None
                    if self.closed:
                        return
                if self.reading_paused and len(queue) <= PIPELINE_DEPTH:
                    self.reading_paused = False
                    self.transport.resume_reading()
            if not (self.in_head or self.broken or self.closed):
                listener.idle.waiting[self] = listener.loop.time()
        finally:
            self.task = None

    def _respond(self, request: Request, status: int, content_type: str, body: bytes,
                 headers: tuple[tuple[str, str], ...], keep_alive: bool) -> None:
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers) if headers else ""
        if not keep_alive:
            extra += "Connection: close\r\n"
        elif request.http10:
            extra += "Connection: keep-alive\r\n"
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n{extra}\r\n").encode("latin-1")
        self.write(head if request.method == "HEAD" else head + body)

    def write(self, data: bytes) -> None:
        if not self.closed and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
