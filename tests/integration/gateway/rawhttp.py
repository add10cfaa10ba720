"""A raw HTTP/1.1 client on asyncio streams, for the requests aiohttp will not send: no
Content-Type, a Content-Length the body never reaches, a body that stops, byte salad."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Iterable

HOST = "127.0.0.1"


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    """One HTTP response; asyncio.IncompleteReadError if the server closes before it is complete."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    _version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        body = await reader.read()
    return Reply(int(status), reason, headers, body)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed);
    asyncio.TimeoutError if it is still open after ``timeout`` seconds."""
    chunks = []

    async def drain() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                chunks.append(chunk)

    await asyncio.wait_for(drain(), timeout)
    return b"".join(chunks)


def head(method: str, path: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(parts: Iterable[bytes]) -> list[bytes]:
    out = [b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p]
    return out + [b"0\r\n\r\n"]


async def exchange(port: int, data: list[bytes], timeout: float = 20.0) -> Reply:
    """Send ``data`` (a list of writes) on a new connection and read one response. Writing goes on
    beside the read: a server may answer (413) before it has read the whole body."""
    reader, writer = await asyncio.open_connection(HOST, port)

    async def write() -> None:
        with contextlib.suppress(ConnectionError):
            for part in data:
                writer.write(part)
                await writer.drain()

    writing = asyncio.create_task(write())
    try:
        return await asyncio.wait_for(read_reply(reader), timeout)
    finally:
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writing
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def request(port: int, method: str, path: str, body: bytes | list[bytes] = b"", *,
                  content_type: str | None = "application/xml", headers: Iterable[tuple[str, str]] = (),
                  timeout: float = 20.0) -> Reply:
    """A complete request on its own connection (Connection: close). A list body is sent chunked."""
    hdrs = [("Connection", "close"), *headers]
    if content_type is not None:
        hdrs.append(("Content-Type", content_type))
    if isinstance(body, list):
        hdrs.append(("Transfer-Encoding", "chunked"))
        data = [head(method, path, hdrs), *chunked(body)]
    else:
        hdrs.append(("Content-Length", str(len(body))))
        data = [head(method, path, hdrs) + body] if len(body) < 65536 else [head(method, path, hdrs), body]
    return await exchange(port, data, timeout)
