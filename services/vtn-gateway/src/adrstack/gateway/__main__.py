"""``python -m adrstack.gateway``: the VTN gateway, configured by environment (ADRSTACK_*, NATS_URL)."""

from __future__ import annotations

import asyncio
import gc

from adrstack.shared.runner import run_service

from .app import Gateway
from .settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()

    async def serve(stop: asyncio.Event) -> None:
        gateway = Gateway(settings)
        await gateway.start()
        gc.freeze()  # what start-up built (mirrors, handlers) lives as long as the process
        try:
            await stop.wait()
        finally:
            await gateway.stop()

    run_service(serve, settings.log_level)


if __name__ == "__main__":
    main()
