"""``python -m adrstack.api``: serve the API with uvicorn on ADRSTACK_API_HOST:ADRSTACK_API_PORT.

SIGTERM/SIGINT are handled by the shared runner (not uvicorn, which re-raises the signal
and so exits with -15): uvicorn is asked to stop, closes connections, then runs the
lifespan shutdown, which drains NATS; the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import uvicorn

from adrstack.shared.runner import run_service

from .app import create_app
from .settings import ApiSettings

GRACEFUL_SHUTDOWN_SECONDS = 10

log = logging.getLogger("adrstack.api")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        # run_service owns the signals.
        yield


async def _serve(server: uvicorn.Server) -> int:
    try:
        await server.serve()
    except SystemExit as e:  # uvicorn exits on startup failure; it already logged why
        return e.code if isinstance(e.code, int) else 1
    return 0


async def serve(settings: ApiSettings, stop: asyncio.Event) -> int:
    """Serve until ``stop`` is set; return the process exit code."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # keep the service's logging format
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        lifespan="on",
        # A websocket message is a GraphQL operation too: the same cap as a /graphql body.
        ws_max_size=settings.graphql_body_limit,
    )
    server = _Server(config)
    serving = asyncio.create_task(_serve(server))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    server.should_exit = True
    return await serving


def main() -> int:
    settings = ApiSettings()
    exit_code = 0

    async def run(stop: asyncio.Event) -> None:
        nonlocal exit_code
        exit_code = await serve(settings, stop)

    run_service(run, settings.log_level)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
