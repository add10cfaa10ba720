"""Raw-socket OpenADR 2.0b load generator, shared by bench/poll.py and bench/fanout.py.

Why not aiohttp/httpx: an aiohttp client tops out near 17,000 requests/s on one core, which is
too close to what we measure to be sure the client is not the bottleneck. Here every request is
pre-built bytes written on a keep-alive socket (an asyncio Protocol), and a response is cut out
of the stream by its Content-Length with no header parsing beyond that. The generator reports
its own CPU use so a reader can see how much headroom it had.

Timestamps are ``time.monotonic()`` (CLOCK_MONOTONIC on Linux): it is comparable across
processes, which the plain-openleadr baseline process relies on, and it has ns resolution
(uvloop's ``loop.time()`` is millisecond-granular, too coarse for latencies).
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from openleadr.messaging import create_message

VTN_PATH = "/OpenADR2/Simple/2.0b"
MAX_ERROR_SAMPLES = 5
DRAIN_TIMEOUT = 30.0  # seconds to wait for the answers still outstanding when a driver stops
TICK = 0.001  # seconds; the scheduling granularity of the open loops (their lateness is printed)

now = time.monotonic


# --------------------------------------------------------------------------- event loop


def install_uvloop() -> str:
    """uvloop roughly halves the generator's CPU per request; fall back to asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return f"uvloop {uvloop.__version__}"


# --------------------------------------------------------------------------- TLS

# OpenSSL's name of TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, the 2.0b ECC suite.
OADR_ECC_SUITE = "ECDHE-ECDSA-AES128-SHA256"


def tls_client_context(ca, cert, key, suite: str | None = OADR_ECC_SUITE,
                       version: ssl.TLSVersion | None = ssl.TLSVersion.TLSv1_2) -> ssl.SSLContext:
    """A VEN's client context: the server checked against ``ca`` (host name included), our
    certificate presented. By default TLS 1.2 with the 2.0b ECC suite only, as a 2.0b VEN does;
    ``suite=None, version=None`` leaves OpenSSL's defaults (TLS 1.3)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    if suite is not None:
        ctx.set_ciphers(suite)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


# --------------------------------------------------------------------------- requests


def http_request(host: str, port: int, path: str, body: bytes, content_type: str = "application/xml",
                 method: str = "POST") -> bytes:
    """One complete HTTP/1.1 keep-alive request, built once and written as is."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode("ascii") + body


class Messages:
    """OpenADR bodies from openleadr's own ``create_message``, rendered once with sentinels and then
    filled by ``bytes.replace``: rendering a Jinja template per VEN (~50 us) would make the
    generator, not the server, the cost at 100,000 VENs. Every template is checked once against a
    direct ``create_message`` call, so the bytes are exactly what openleadr would send."""

    VEN, REQ, NAME, EVT, MOD = "VENSENTINEL", "REQSENTINEL", "NAMESENTINEL", "EVTSENTINEL", 987654321

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._registration = self._render_registration(self.NAME, self.REQ)
        self._poll = create_message("oadrPoll", ven_id=self.VEN).encode()
        created = self._render_created(self.VEN, self.REQ, [(self.EVT, self.MOD)]).encode()
        head, rest = created.split(b"<ei:eventResponses>", 1)
        one, tail = rest.split(b"</ei:eventResponses>", 1)
        self._created = (head + b"<ei:eventResponses>", one, b"</ei:eventResponses>" + tail)
        self._self_check()

    @staticmethod
    def _render_registration(ven_name: str, request_id: str) -> str:
        return create_message(
            "oadrCreatePartyRegistration", request_id=request_id, ven_name=ven_name, http_pull_model=True,
            xml_signature=False, report_only=False, profile_name="2.0b", transport_name="simpleHttp",
            transport_address=None, ven_id=None, registration_id=None)

    @staticmethod
    def _render_created(ven_id: str, request_id: str, events: Sequence[tuple[str, int]]) -> str:
        return create_message(
            "oadrCreatedEvent", ven_id=ven_id,
            response={"response_code": 200, "response_description": "OK", "request_id": request_id},
            event_responses=[{"response_code": 200, "response_description": "OK", "request_id": request_id,
                              "event_id": e, "modification_number": m, "opt_type": "optIn"} for e, m in events])

    def _self_check(self) -> None:
        assert self.registration_body("ven-a", "r-1").decode() == self._render_registration("ven-a", "r-1")
        assert self.poll_body("ven-a").decode() == create_message("oadrPoll", ven_id="ven-a")
        pairs = [("evt-1", 0), ("evt-2", 3)]
        assert self.created_event_body("ven-a", "req-1", pairs).decode() == \
            self._render_created("ven-a", "req-1", pairs)

    # bodies ----------------------------------------------------------------

    def registration_body(self, ven_name: str, request_id: str) -> bytes:
        return (self._registration.replace(self.NAME, ven_name).replace(self.REQ, request_id)).encode()

    def poll_body(self, ven_id: str) -> bytes:
        return self._poll.replace(self.VEN.encode(), ven_id.encode())

    def created_event_body(self, ven_id: str, request_id: str, events: Sequence[tuple[str, int]]) -> bytes:
        head, one, tail = self._created
        req = request_id.encode()
        responses = b"".join(
            one.replace(self.EVT.encode(), e.encode()).replace(str(self.MOD).encode(), str(m).encode())
            for e, m in events)
        return (head + responses + tail).replace(self.REQ.encode(), req).replace(self.VEN.encode(), ven_id.encode())

    # requests --------------------------------------------------------------

    def post(self, service: str, body: bytes) -> bytes:
        return http_request(self.host, self.port, f"{VTN_PATH}/{service}", body)

    def registration(self, ven_name: str, request_id: str) -> bytes:
        return self.post("EiRegisterParty", self.registration_body(ven_name, request_id))

    def poll(self, ven_id: str) -> bytes:
        return self.post("OadrPoll", self.poll_body(ven_id))

    def created_event(self, ven_id: str, request_id: str, events: Sequence[tuple[str, int]]) -> bytes:
        return self.post("EiEvent", self.created_event_body(ven_id, request_id, events))


# --------------------------------------------------------------------------- answers

# Substring tests, not XML parsing: the generator must stay cheap. Both servers spell their answers
# in a fixed way (openleadr's templates, adrstack's renderer); these patterns accept both (the
# requestID is in the payloads namespace, as a default namespace or a prefix).
_OADR_RESPONSE = b"<oadr:oadrResponse "
_OK_CODE = b"<ei:responseCode>200</ei:responseCode>"
_DISTRIBUTE = b"<oadr:oadrDistributeEvent "
_VEN_ID = re.compile(rb"<ei:venID>([^<]+)</ei:venID>")
_REGISTRATION_ID = re.compile(rb"<ei:registrationID>([^<]+)</ei:registrationID>")
_DISTRIBUTE_REQUEST_ID = re.compile(rb"</ei:eiResponse>\s*<(?:\w+:)?requestID[^>]*>([^<]*)</(?:\w+:)?requestID>")
_EVENT = re.compile(rb"<ei:eventID>([^<]+)</ei:eventID><ei:modificationNumber>(\d+)</ei:modificationNumber>")
_MESSAGE_TYPE = re.compile(rb"<oadr:(oadr\w+) ei:schemaVersion")


def describe(status: int, body: bytes) -> str:
    """A short text for an unexpected answer, for the error samples."""
    if status != 200:
        return f"HTTP {status}: {body[:120]!r}"
    kind = _MESSAGE_TYPE.search(body)
    code = re.search(rb"<ei:responseCode>(\d+)</ei:responseCode>", body)
    return (f"{kind.group(1).decode() if kind else 'unknown message'}"
            f"{' responseCode ' + code.group(1).decode() if code else ''}")


def is_ok_response(status: int, body: bytes) -> bool:
    """An oadrResponse with responseCode 200: what an idle poll and an oadrCreatedEvent must get."""
    return status == 200 and _OADR_RESPONSE in body and _OK_CODE in body


def is_distribute(status: int, body: bytes) -> bool:
    return status == 200 and _DISTRIBUTE in body and _OK_CODE in body


def registration_ids(status: int, body: bytes) -> tuple[str, str] | None:
    """(venID, registrationID) from an oadrCreatedPartyRegistration, or None."""
    if status != 200 or b"oadrCreatedPartyRegistration" not in body or _OK_CODE not in body:
        return None
    ven, reg = _VEN_ID.search(body), _REGISTRATION_ID.search(body)
    return (ven.group(1).decode(), reg.group(1).decode()) if ven and reg else None


def distributed_events(body: bytes) -> tuple[str, list[tuple[str, int]]]:
    """(requestID, [(eventID, modificationNumber)]) of an oadrDistributeEvent."""
    req = _DISTRIBUTE_REQUEST_ID.search(body)
    events = [(e.decode(), int(m)) for e, m in _EVENT.findall(body)]
    return (req.group(1).decode() if req else ""), events


# --------------------------------------------------------------------------- connections

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)

OnDone = Callable[["Conn", int, bytes, object], None]


class Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight (no pipelining: aiohttp
    answers pipelined requests one by one anyway, and VENs do not pipeline)."""

    def __init__(self, pool: "Pool"):
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.need = -1  # total bytes of the response being read (head + body), -1: head not yet seen
        self.body_at = 0
        self.status = 0
        self.on_done: OnDone | None = None
        self.ctx: object = None
        self.identity = 0  # which of the pool's TLS client certificates this connection presents

    def connection_made(self, transport) -> None:
        self.transport = transport

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, request: bytes, on_done: OnDone, ctx: object = None) -> None:
        self.on_done, self.ctx = on_done, ctx
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            if self.need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                length = _CONTENT_LENGTH.search(buf, 0, end + 2)
                if length is None:  # chunked or close-delimited: not something our servers send
                    self._fail(f"response without Content-Length: {buf[:80]!r}")
                    return
                self.status = int(buf[9:12])
                self.body_at = end + 4
                self.need = self.body_at + int(length.group(1))
            if len(buf) < self.need:
                break
            body, buf = buf[self.body_at:self.need], buf[self.need:]
            self.need = -1
            on_done, self.on_done = self.on_done, None
            if on_done is not None:
                on_done(self, self.status, body, self.ctx)
        self.buf = buf

    def _fail(self, why: str) -> None:
        self.pool.note_error(why)
        self.transport.close()

    def connection_lost(self, exc) -> None:
        self.pool.lost(self, exc)


class Pool:
    """Keep-alive connections to one server, plus the error tally every driver shares.

    With ``ssl`` (a client context, or one per client identity: a VEN certificate) the connections
    are TLS; with several contexts they take them in turn, and ``conn.identity`` says which one a
    connection presents, so that a driver sends it only requests of VENs bound to that certificate
    (see ByIdentity)."""

    def __init__(self, host: str, port: int, replace_lost: bool = False,
                 ssl: ssl.SSLContext | Sequence[ssl.SSLContext] | None = None):
        self.host, self.port = host, port
        self.tls: list = [] if ssl is None else [ssl] if not isinstance(ssl, (list, tuple)) else list(ssl)
        self._next_identity = 0
        self.conns: list[Conn] = []
        # A long-running fleet replaces connections the server closed (e.g. aiohttp's 75 s keep-alive
        # timeout on a connection that sat idle) and hands the new one to ``on_new``.
        self.replace_lost = replace_lost
        self.on_new: Callable[[Conn], None] | None = None
        self.errors = 0
        self.error_samples: collections.Counter[str] = collections.Counter()
        self.closing = False
        self.lost_conns = 0

    async def open(self, n: int) -> "Pool":
        for _ in range(n):
            await self._connect()
        return self

    async def _connect(self, identity: int | None = None) -> Conn:
        loop = asyncio.get_running_loop()
        if not self.tls:
            _, conn = await loop.create_connection(lambda: Conn(self), self.host, self.port)
        else:
            if identity is None:
                identity, self._next_identity = self._next_identity, (self._next_identity + 1) % len(self.tls)
            _, conn = await loop.create_connection(lambda: Conn(self), self.host, self.port,
                                                   ssl=self.tls[identity], server_hostname=self.host)
            conn.identity = identity
        self.conns.append(conn)
        return conn

    async def _replace(self, identity: int = 0) -> None:
        try:
            conn = await self._connect(identity if self.tls else None)
        except OSError as e:
            self.note_error(f"could not reconnect: {e}")
            return
        if self.on_new is not None:
            self.on_new(conn)

    def note_error(self, why: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES or why in self.error_samples:
            self.error_samples[why] += 1

    def lost(self, conn: Conn, exc) -> None:
        """The server closed a connection. A request in flight on it is an error; drivers are told
        through their callback (status 0) so they can count it and stop using the connection."""
        if self.closing:
            return
        self.lost_conns += 1
        if conn in self.conns:
            self.conns.remove(conn)  # so a later driver does not write to a closed socket
        if conn.on_done is not None:
            on_done, conn.on_done = conn.on_done, None
            on_done(conn, 0, f"connection lost: {exc}".encode(), conn.ctx)
        if self.replace_lost:
            asyncio.get_running_loop().create_task(self._replace(conn.identity))

    def close(self) -> None:
        self.closing = True
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.close()

    def error_report(self) -> str:
        return "; ".join(f"{n}x {why}" for why, n in self.error_samples.most_common())


# --------------------------------------------------------------------------- drivers

Check = Callable[[int, bytes, int], str | None]  # (status, body, request index) -> None or why it is wrong


class ByIdentity(Sequence[bytes]):
    """Requests grouped by client identity (TLS certificate): a connection presenting identity k
    gets the requests of group k in turn. As a plain sequence (no TLS) it is the groups in a row."""

    def __init__(self, groups: Sequence[Sequence[bytes]]):
        self.groups = list(groups)
        self.cursor = [0] * len(self.groups)
        self._flat = [(g, i) for g, group in enumerate(self.groups) for i in range(len(group))]

    def for_identity(self, identity: int, index: int) -> bytes:
        group = self.groups[identity]
        k = self.cursor[identity]
        self.cursor[identity] = k + 1
        return group[k % len(group)]

    def __len__(self) -> int:
        return len(self._flat)

    def __getitem__(self, i: int) -> bytes:
        g, k = self._flat[i]
        return self.groups[g][k]


def _picker(requests: Sequence[bytes]) -> Callable[[Conn, int], bytes]:
    by_identity = getattr(requests, "for_identity", None)
    if by_identity is not None:
        return lambda conn, index: by_identity(conn.identity, index)
    return lambda conn, index: requests[index % len(requests)]


def expect_ok_response(status: int, body: bytes, index: int) -> str | None:
    return None if is_ok_response(status, body) else describe(status, body)


class ClosedLoop:
    """Every connection sends its next request as soon as the previous answer is in.

    Requests are taken round-robin from ``requests``; with ``total`` the loop ends after that many,
    else it runs until ``stop()``. ``ok``/``errors`` are live counters, so a caller can read them at
    the edges of a measuring window while the loop keeps running.
    """

    def __init__(self, pool: Pool, requests: Sequence[bytes], check: Check = expect_ok_response,
                 total: int | None = None):
        self.pool, self.requests, self.check, self.total = pool, requests, check, total
        self._pick = _picker(requests)
        self.next_index = 0
        self.ok = 0
        self.errors = 0
        self.in_flight = 0
        self.stopping = False
        self._stopped_at = 0.0
        self._done: asyncio.Future | None = None

    async def run(self) -> "ClosedLoop":
        self._done = asyncio.get_running_loop().create_future()
        for conn in list(self.pool.conns):
            self._send_next(conn)
        if self.in_flight == 0:
            self._done.set_result(None)
        while True:
            # Wake now and then: a total-bounded loop whose connections all died would never finish.
            try:
                await asyncio.wait_for(asyncio.shield(self._done), 1.0)
                return self
            except asyncio.TimeoutError:
                if not self.pool.conns:
                    raise ConnectionError("every connection to the server was lost: "
                                          + self.pool.error_report())
                if self.stopping and now() - self._stopped_at > DRAIN_TIMEOUT:
                    self.errors += self.in_flight
                    self.pool.note_error(f"no answer within {DRAIN_TIMEOUT:g} s after stop")
                    return self

    def stop(self) -> None:
        self.stopping = True
        self._stopped_at = now()

    def _send_next(self, conn: Conn) -> None:
        if self.stopping or (self.total is not None and self.next_index >= self.total):
            return
        index = self.next_index
        self.next_index += 1
        self.in_flight += 1
        conn.send(self._pick(conn, index), self._on_done, index)

    def _on_done(self, conn: Conn, status: int, body: bytes, index) -> None:
        self.in_flight -= 1
        why = self.check(status, body, index) if status else body.decode()
        if why is None:
            self.ok += 1
        else:
            self.errors += 1
            self.pool.note_error(why)
        if status:  # a lost connection is not reused
            self._send_next(conn)
        if self.in_flight == 0 and not self._done.done():
            self._done.set_result(None)


@dataclass
class OpenLoopResult:
    latencies: list[float] = field(default_factory=list)  # answer received - scheduled send time
    lateness: list[float] = field(default_factory=list)  # when the generator got round to it - scheduled
    ok: int = 0
    errors: int = 0
    scheduled: int = 0
    wall: float = 0.0


class OpenLoop:
    """Requests at fixed times (``rate`` per second), whatever the server does: a request whose
    time has come waits in a FIFO for a free connection, and that wait counts in its latency
    (answer received - scheduled time), so queueing is measured instead of hidden."""

    def __init__(self, pool: Pool, requests: Sequence[bytes], rate: float, duration: float,
                 check: Check = expect_ok_response):
        self.pool, self.requests, self.rate, self.duration, self.check = pool, requests, rate, duration, check
        self._pick = _picker(requests)
        self.idle: collections.deque[Conn] = collections.deque(pool.conns)
        self.backlog: collections.deque[tuple[float, int]] = collections.deque()
        self.result = OpenLoopResult()
        self.in_flight = 0
        self._drained: asyncio.Future | None = None

    async def run(self) -> OpenLoopResult:
        loop = asyncio.get_running_loop()
        self._drained = loop.create_future()
        total = int(self.rate * self.duration)
        start = now() + 0.01
        k = 0
        while k < total:
            t = now()
            # Everything due by now goes out in one pass; lateness records how far behind we were.
            while k < total and start + k / self.rate <= t:
                self._dispatch(start + k / self.rate, k)
                self.result.lateness.append(t - (start + k / self.rate))
                k += 1
            if k < total:
                # At least TICK: uvloop's timers are millisecond-granular and return shorter sleeps
                # at once, so the generator would spin and (on hyperthreads) slow the server's core.
                await asyncio.sleep(max(TICK, start + k / self.rate - now()))
        self.result.scheduled = total
        if self.in_flight or self.backlog:
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), DRAIN_TIMEOUT)
            except asyncio.TimeoutError:
                unanswered = self.in_flight + len(self.backlog)
                self.result.errors += unanswered
                self.pool.note_error(f"no answer within {DRAIN_TIMEOUT:g} s after the last send")
        self.result.wall = now() - start
        return self.result

    def _dispatch(self, scheduled: float, index: int) -> None:
        while self.idle and not self.idle[0].usable:  # closed by the server while idle
            self.idle.popleft()
        if self.idle:
            self._send(self.idle.popleft(), scheduled, index)
        else:
            self.backlog.append((scheduled, index))

    def _send(self, conn: Conn, scheduled: float, index: int) -> None:
        self.in_flight += 1
        conn.send(self._pick(conn, index), self._on_done, (scheduled, index))

    def _on_done(self, conn: Conn, status: int, body: bytes, ctx) -> None:
        scheduled, index = ctx
        self.in_flight -= 1
        received = now()
        why = self.check(status, body, index) if status else body.decode()
        if why is None:
            self.result.ok += 1
            self.result.latencies.append(received - scheduled)
        else:
            self.result.errors += 1
            self.pool.note_error(why)
        if status:
            if self.backlog:
                self._send(conn, *self.backlog.popleft())
            else:
                self.idle.append(conn)
        if not self.in_flight and not self.backlog and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)


class _Registrations(Sequence[bytes]):
    """Built on demand: 100,000 registration requests would otherwise sit in memory as 100 MB."""

    def __init__(self, messages: Messages, count: int, name_prefix: str):
        self.messages, self.count, self.name_prefix = messages, count, name_prefix

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> bytes:
        return self.messages.registration(f"{self.name_prefix}-{i}", f"reg-req-{i}")


async def register(host: str, port: int, messages: Messages, count: int, connections: int = 64,
                   name_prefix: str = "bench", timeout: float | None = None) -> tuple[list[str], Pool]:
    """Register ``count`` VENs with real oadrCreatePartyRegistration messages; their venIDs in order.

    Returns the pool too so the caller can print its errors; a VEN whose registration failed (or
    was not done within ``timeout``) has an empty venID."""
    ven_ids = [""] * count
    requests = _Registrations(messages, count, name_prefix)

    def check(status: int, body: bytes, index: int) -> str | None:
        ids = registration_ids(status, body)
        if ids is None:
            return "registration refused: " + describe(status, body)
        ven_ids[index] = ids[0]
        return None

    pool = await Pool(host, port).open(min(connections, count))
    loop = ClosedLoop(pool, requests, check, total=count)
    try:
        await asyncio.wait_for(loop.run(), timeout)
    except asyncio.TimeoutError:
        pool.note_error(f"registration not finished within {timeout:g} s ({loop.ok} of {count} done)")
    finally:
        pool.close()
    return ven_ids, pool


# --------------------------------------------------------------------------- one-off requests


async def http_call(host: str, port: int, method: str, path: str, body: bytes = b"",
                    content_type: str = "application/json", timeout: float = 30.0,
                    ssl: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """A single request on its own connection (health checks, the GraphQL mutation, probes)."""

    async def call() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl,
                                                       server_hostname=host if ssl is not None else None)
        try:
            writer.write(http_request(host, port, path, body, content_type, method))
            head = await reader.readuntil(b"\r\n\r\n")
            length = _CONTENT_LENGTH.search(head)
            if length is None:
                raise ValueError(f"no Content-Length in answer to {method} {path}: {head[:200]!r}")
            return int(head[9:12]), await reader.readexactly(int(length.group(1)))
        finally:
            writer.close()

    return await asyncio.wait_for(call(), timeout)


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# --------------------------------------------------------------------------- self-test
#
# `python bench/rawload.py` measures the generator's own ceiling: a canned-answer server on CPU 0
# (a few microseconds per request) against the closed loop on CPU 1, so the generator is the
# bottleneck and its CPU per request is what is printed.

_CANNED_SERVER = r'''
import asyncio, ssl, sys, uvloop
body = open(sys.argv[2], "rb").read()
tls = None
if len(sys.argv) > 3:  # cert key ca: mTLS, as a VTN would
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[3], sys.argv[4])
    tls.load_verify_locations(sys.argv[5])
    tls.verify_mode = ssl.CERT_REQUIRED
answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
class Canned(asyncio.Protocol):
    def connection_made(self, t): self.t = t; self.buf = b""
    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0: return
            length = int(self.buf[:end].lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(self.buf) < end + 4 + length: return
            self.buf = self.buf[end + 4 + length:]
            self.t.write(answer)
async def main():
    server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", int(sys.argv[1]), ssl=tls)
    print("ready", flush=True)
    await server.serve_forever()
uvloop.run(main())
'''


async def _self_test(seconds: float, connections: int, tls: bool = False, signed: bool = False) -> None:
    import os
    import sys

    import stack

    idle = create_message("oadrResponse", response={"response_code": 200, "response_description": "OK",
                                                     "request_id": None}, ven_id="ven-0", vtn_id="X")
    bench = stack.Bench()
    try:
        answer = bench.tmp / "answer.xml"
        answer.write_text(idle)
        script = bench.tmp / "canned.py"
        script.write_text(_CANNED_SERVER)
        port = stack.pick_port()
        argv = [sys.executable, str(script), str(port), str(answer)]
        client_tls = None
        if tls or signed:
            from adrstack.runtime.certs import ensure_certs

            certs = ensure_certs(bench.tmp / "certs", ["ven"])
            argv += [str(certs.vtn_ecc.cert), str(certs.vtn_ecc.key), str(certs.ca.cert)]
            client_tls = tls_client_context(certs.ca.cert, certs.vens["ven"].cert, certs.vens["ven"].key)
        child = bench.spawn_piped("canned", argv, {stack.SERVER_CPU})
        await asyncio.to_thread(child.proc.stdout.readline)
        messages = Messages("127.0.0.1", port)
        ven_ids = [f"ven-{i}" for i in range(1000)]
        if signed:
            from signing import PollSigner, SignedPolls

            signer = PollSigner(certs.vens["ven"].cert.read_bytes(), certs.vens["ven"].key.read_bytes())
            polls = SignedPolls(signer, messages.post, ven_ids)
        else:
            polls = [messages.poll(v) for v in ven_ids]
        pool = await Pool("127.0.0.1", port, ssl=client_tls).open(connections)
        loop = ClosedLoop(pool, polls)
        task = asyncio.create_task(loop.run())
        await asyncio.sleep(1.0)
        ok0, t0, cpu0, srv0 = loop.ok, now(), stack.own_cpu_seconds(), stack.cpu_seconds([child.pid])
        await asyncio.sleep(seconds)
        ok1, t1, cpu1, srv1 = loop.ok, now(), stack.own_cpu_seconds(), stack.cpu_seconds([child.pid])
        loop.stop()
        await task
        pool.close()
        n, wall, cpu = ok1 - ok0, t1 - t0, cpu1 - cpu0
        kind = ("signed polls over mTLS" if signed else "polls over mTLS") if client_tls else "polls"
        if client_tls:
            kind += f" (TLS 1.2 {OADR_ECC_SUITE})"
        print(f"load generator self-test, {kind} ({os.path.basename(sys.executable)}, {connections} connections, "
              f"canned-answer server on CPU {stack.SERVER_CPU} at {(srv1 - srv0) / wall:.0%}): "
              f"{n / wall:,.0f} polls/s, generator CPU {cpu / wall:.0%} of CPU {stack.LOADGEN_CPU}, "
              f"{cpu / n * 1e6:.1f} us per poll -> ceiling ~{n / cpu:,.0f} polls/s; errors {loop.errors}")
    finally:
        bench.close()


if __name__ == "__main__":
    import argparse

    import stack

    parser = argparse.ArgumentParser(description="measure the raw load generator's own ceiling")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--tls", action="store_true", help="over mTLS (TLS 1.2, the 2.0b ECC suite)")
    parser.add_argument("--signed", action="store_true", help="XML-signed polls, signed as sent (implies --tls)")
    cli = parser.parse_args()
    print("event loop:", install_uvloop())
    stack.require_two_cpus()
    stack.pin_self(stack.LOADGEN_CPU)
    asyncio.run(_self_test(cli.seconds, cli.connections, cli.tls, cli.signed))
