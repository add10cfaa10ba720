"""The VTN's HTTP/1.1 listener (gateway/http.py) on its own, with a stand-in app: what the
integration tests cannot easily provoke (pipelining, HTTP/1.0, Expect, lingering, stop)."""

from __future__ import annotations

import asyncio
import collections
import contextlib

import pytest

from adrstack.gateway.http import BodyTooLarge, Listener
from tests.integration.gateway import rawhttp

MAX_BODY = 1000


class App:
    def __init__(self):
        self.seen: list[tuple[str, str, bytes]] = []
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()  # a /slow request is held at the gate

    async def __call__(self, request):
        if request.path == "/slow" and self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        if request.content_type == "bad":
            return 415, "text/plain", b"no\n", ()
        try:
            body = await request.read(1.0)
        except BodyTooLarge:
            return 413, "text/plain", b"big\n", ()
        except TimeoutError:
            request.keep_alive = False
            return 408, "text/plain", b"slow\n", ()
        except ConnectionError:
            return 400, "text/plain", b"incomplete\n", ()
        self.seen.append((request.method, request.path, body))
        return 200, "text/plain", request.path.encode() + b":" + body, (("X-Seen", str(len(self.seen))),)


@pytest.fixture
async def server():
    app = App()
    listener = Listener(app, max_body_bytes=MAX_BODY, header_timeout=1.0, keepalive_timeout=1.5,
                        refused=collections.Counter())
    await listener.start("127.0.0.1", 0)
    listener.test_app = app
    try:
        yield listener
    finally:
        await listener.stop()


def post(path: str, body: bytes = b"", *headers: tuple[str, str], version: str = "1.1") -> bytes:
    head = rawhttp.head("POST", path, [("Content-Length", str(len(body))), *headers])
    return head.replace(b"HTTP/1.1", f"HTTP/{version}".encode(), 1) + body


@contextlib.asynccontextmanager
async def connection(port: int):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def test_pipelined_requests_are_answered_in_order_on_one_connection(server):
    async with connection(server.port) as (reader, writer):
        writer.write(b"".join(post(f"/{i}", b"x" * i) for i in range(12)))
        for i in range(12):
            reply = await asyncio.wait_for(rawhttp.read_reply(reader), 5)
            assert (reply.status, reply.body) == (200, f"/{i}:".encode() + b"x" * i)
            assert reply.headers["x-seen"] == str(i + 1)


async def test_chunked_body_and_http10(server):
    async with connection(server.port) as (reader, writer):
        writer.write(rawhttp.head("POST", "/c", [("Transfer-Encoding", "chunked")]) + b"".join(rawhttp.chunked([b"ab", b"cd"])))
        reply = await rawhttp.read_reply(reader)
        assert reply.body == b"/c:abcd" and "connection" not in reply.headers
    async with connection(server.port) as (reader, writer):
        writer.write(post("/old", b"1", version="1.0"))
        reply = await rawhttp.read_reply(reader)
        assert reply.body == b"/old:1" and reply.headers["connection"] == "close"
        assert await rawhttp.read_until_closed(reader, 2) == b""
    async with connection(server.port) as (reader, writer):
        writer.write(post("/old", b"1", ("Connection", "keep-alive"), version="1.0"))
        assert (await rawhttp.read_reply(reader)).headers["connection"] == "keep-alive"
        writer.write(post("/again", b"2", ("Connection", "keep-alive"), version="1.0"))
        assert (await rawhttp.read_reply(reader)).body == b"/again:2"


async def test_expect_100_continue(server):
    async with connection(server.port) as (reader, writer):
        writer.write(rawhttp.head("POST", "/e", [("Content-Length", "3"), ("Expect", "100-continue")]))
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"abc")
        assert (await rawhttp.read_reply(reader)).body == b"/e:abc"


async def test_an_answer_before_the_body_lingers_then_keeps_the_connection(server):
    async with connection(server.port) as (reader, writer):
        writer.write(rawhttp.head("POST", "/b", [("Content-Length", "10"), ("Content-Type", "bad")]) + b"12345")
        assert (await rawhttp.read_reply(reader)).status == 415
        writer.write(b"67890" + post("/next", b"ok"))
        assert (await rawhttp.read_reply(reader)).body == b"/next:ok"
    async with connection(server.port) as (reader, writer):  # 413 while chunked: the rest is dropped
        writer.write(rawhttp.head("POST", "/big", [("Transfer-Encoding", "chunked")]) + b"".join(
            rawhttp.chunked([b"x" * 600] * 3)))
        assert (await rawhttp.read_reply(reader)).status == 413
        writer.write(post("/next", b"ok"))
        assert (await rawhttp.read_reply(reader)).body == b"/next:ok"


async def test_body_timeout_and_malformed_input_close(server):
    async with connection(server.port) as (reader, writer):
        writer.write(rawhttp.head("POST", "/t", [("Content-Length", "10")]) + b"123")
        reply = await asyncio.wait_for(rawhttp.read_reply(reader), 5)
        assert reply.status == 408 and reply.headers["connection"] == "close"
        assert await rawhttp.read_until_closed(reader, 2) == b""
    for bad in (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
                b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
                b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                rawhttp.head("POST", "/t", [("Transfer-Encoding", "chunked")]) + b"zz\r\n"):
        async with connection(server.port) as (reader, writer):
            writer.write(bad)
            data = await rawhttp.read_until_closed(reader, 3)
            assert data.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in data, (bad[:40], data)


async def test_idle_and_slow_connections_are_closed(server):
    async with connection(server.port) as (reader, writer):
        writer.write(post("/k", b"1"))
        await rawhttp.read_reply(reader)
        assert await rawhttp.read_until_closed(reader, 4) == b""  # keep-alive timeout 1.5 s
    async with connection(server.port) as (reader, writer):
        writer.write(b"POST /k HTTP/1.1\r\n")
        assert await rawhttp.read_until_closed(reader, 4) == b""
    assert server.refused["slow_headers"] == 1


async def test_stop_answers_requests_in_progress_and_closes_idle_connections(server):
    server.test_app.gate = asyncio.Event()
    port = server.port
    async with connection(server.port) as (idle_reader, idle_writer), \
            connection(server.port) as (reader, writer):
        idle_writer.write(post("/i"))
        await rawhttp.read_reply(idle_reader)
        writer.write(post("/slow", b"s"))
        await asyncio.wait_for(server.test_app.waiting.wait(), 5)  # in progress when the stop begins
        stopping = asyncio.create_task(server.stop())
        assert await rawhttp.read_until_closed(idle_reader, 2) == b""
        server.test_app.gate.set()
        reply = await rawhttp.read_reply(reader)
        assert reply.body == b"/slow:s" and reply.headers["connection"] == "close"
        await asyncio.wait_for(stopping, 5)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
