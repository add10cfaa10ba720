"""How every service process runs: logging, asyncio, and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from typing import Awaitable, Callable

try:
    import uvloop
except ImportError:  # Windows, PyPy: the standard loop
    uvloop = None


LOG_FORMATS = ("text", "json")


def configure_logging(level: str = "INFO", log_format: str | None = None) -> None:
    """Text lines, or with ``ADRSTACK_LOG_FORMAT=json`` one JSON object per line carrying the
    ven_id and event_id a line is about (see logfields.py), for log pipelines that index them."""
    log_format = (log_format or os.environ.get("ADRSTACK_LOG_FORMAT") or "text").strip().lower()
    if log_format not in LOG_FORMATS:
        raise ValueError(f"ADRSTACK_LOG_FORMAT={log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from .logfields import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])


def run_service(main: Callable[[asyncio.Event], Awaitable[None]], log_level: str = "INFO") -> None:
    """Run ``main(stop)``; ``stop`` is set on SIGTERM or SIGINT and main must then drain and return."""
    configure_logging(log_level)

    async def runner() -> None:
        from .jetstream import MissingInfrastructure

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await main(stop)
        except MissingInfrastructure as e:
            logging.getLogger("adrstack").error("not starting: %s", e)
            sys.exit(2)

    # Everything imported so far lives as long as the process: keep the collector from walking
    # it again and again (a full collection over it is a pause of tens of milliseconds).
    gc.collect()
    gc.freeze()
    if uvloop is not None:
        uvloop.run(runner())
    else:
        asyncio.run(runner())
