"""``GET /health``: 200 when NATS is connected and Postgres answers, else 503."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

DB_CHECK_TIMEOUT = 2.0


def health_router() -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health(request: Request) -> JSONResponse:
        state = request.app.state.api
        nats_ok = state.nc.is_connected
        try:
            await asyncio.wait_for(state.store.ping(), DB_CHECK_TIMEOUT)
            db_ok = True
        except Exception as e:  # any failure means "not healthy", reported, not raised
            log.warning("health: database check failed: %s", e)
            db_ok = False
        ok = nats_ok and db_ok
        return JSONResponse(
            {
                "status": "ok" if ok else "unavailable",
                "nats": nats_ok,
                "database": db_ok,
                "subscriptions": state.hub.subscriber_count,
                "subscriptionHub": state.hub.stats(),
            },
            status_code=200 if ok else 503,
        )

    return router
