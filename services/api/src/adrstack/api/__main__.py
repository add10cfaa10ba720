"""``python -m adrstack.api``: serve the API with uvicorn on ADRSTACK_API_HOST:ADRSTACK_API_PORT.

uvicorn handles SIGTERM/SIGINT itself: it stops accepting, closes connections, then runs
the lifespan shutdown, which drains NATS.
"""

from __future__ import annotations

import uvicorn

from adrstack.shared.runner import configure_logging

from .app import create_app
from .settings import ApiSettings

GRACEFUL_SHUTDOWN_SECONDS = 10


def main() -> None:
    settings = ApiSettings()
    configure_logging(settings.log_level)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # keep the service's logging format
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        lifespan="on",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
