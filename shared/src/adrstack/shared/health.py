"""Liveness, readiness and metrics over HTTP, the same for every service.

``/healthz``: the process answers (200). ``/readyz`` (and the older ``/health``): 200 when every
dependency check passes, else 503, with each check's result as JSON. ``/metrics``: Prometheus text.
The gateway and the api serve these on their own ports; the scheduler and telemetry, which have
no HTTP server, on a small one of their own (:class:`HealthServer`, plain asyncio, no framework).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Awaitable, Callable, Mapping

from .metrics import CONTENT_TYPE, Registry

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0
JSON = "application/json; charset=utf-8"

Check = Callable[[], Awaitable[bool] | bool]
Response = tuple[int, str, bytes]


def nats_check(get_nc: Callable[[], object]) -> Check:
    def check() -> bool:
        nc = get_nc()
        return bool(nc is not None and nc.is_connected)
    return check


def database_check(ping: Callable[[], Awaitable[object]]) -> Check:
    async def check() -> bool:
        await ping()
        return True
    return check


async def run_checks(checks: Mapping[str, Check]) -> dict[str, bool]:
    results = {}
    for name, check in checks.items():
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await asyncio.wait_for(result, CHECK_TIMEOUT)
            results[name] = bool(result)
        except Exception as e:  # a failed check means "not ready": said, not raised
            log.warning("readiness: %s check failed: %s", name, e)
            results[name] = False
    return results


async def readiness(checks: Mapping[str, Check], extra: Mapping[str, object] | None = None) -> tuple[int, dict]:
    results = await run_checks(checks)
    ok = all(results.values())
    return (200 if ok else 503), {"status": "ok" if ok else "unavailable", **results, **(extra or {})}


def liveness() -> Response:
    return 200, JSON, b'{"status":"alive"}'


class HealthServer:
    """GET /healthz, /readyz, /health and /metrics on a port of their own."""

    def __init__(self, checks: Mapping[str, Check], metrics: Registry | None = None) -> None:
        self.checks, self.metrics = checks, metrics
        self.server: asyncio.base_events.Server | None = None
        self.port: int | None = None

    async def respond(self, path: str) -> Response:
        if path == "/healthz":
            return liveness()
        if path in ("/readyz", "/health"):
            status, body = await readiness(self.checks)
            return status, JSON, json.dumps(body).encode()
        if path == "/metrics" and self.metrics is not None:
            return 200, CONTENT_TYPE, self.metrics.render()
        return 404, JSON, b'{"error":"not found"}'

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path, _ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method not in ("GET", "HEAD"):
                status, ctype, body = 405, JSON, b'{"error":"method not allowed"}'
            else:
                status, ctype, body = await self.respond(path.split("?", 1)[0])
            head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                ConnectionError):
            pass  # a probe that hung up or spoke something else gets nothing
        finally:
            writer.close()

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
