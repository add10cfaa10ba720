"""``python -m adrstack.gateway``: the VTN gateway, configured by environment (ADRSTACK_*, NATS_URL)."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

from adrstack.shared.runner import run_service

from .app import Gateway, SecurityConfigError
from .settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()

    async def serve(stop: asyncio.Event) -> None:
        gateway = Gateway(settings)
        try:
            await gateway.start()
        except SecurityConfigError as e:
            logging.getLogger("adrstack.gateway").error("not starting: %s", e)
            sys.exit(2)
        gc.freeze()  # what start-up built (mirrors, handlers) lives as long as the process
        try:
            await stop.wait()
        finally:
            await gateway.stop()

    run_service(serve, settings.log_level)


if __name__ == "__main__":
    main()
