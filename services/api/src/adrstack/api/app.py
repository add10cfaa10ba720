"""The FastAPI app factory. Nothing connects at import time: NATS and the database engine
are opened in the lifespan and closed (NATS drained) when the server stops."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from adrstack.shared.db import async_engine
from adrstack.shared.jetstream import connect

from .body_limit import BodyLimitMiddleware
from .dashboard import dashboard_router
from .graphql_router import ApiGraphQLRouter
from .health import health_router
from .scheduler_client import SchedulerClient
from .ven_commands import GatewayClient
from .schema import build_schema
from .send_event import send_event_router
from .settings import ApiSettings
from .state import ApiState
from .store import Store

log = logging.getLogger(__name__)


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings, name="adrstack-api")
        engine = async_engine(settings.database_url)
        app.state.api = ApiState(
            settings=settings,
            nc=nc,
            store=Store(engine),
            scheduler=SchedulerClient(nc, settings.subjects, settings.command_timeout),
            gateway=GatewayClient(nc, settings.subjects, settings.command_timeout),
        )
        log.info("api ready: nats %s, subject prefix %s", settings.nats_url, settings.subject_prefix)
        try:
            yield
        finally:
            # Drain: in-flight requests get their replies, subscriptions end, then close.
            try:
                await nc.drain()
            except Exception as e:
                log.warning("nats drain failed: %s", e)
            await engine.dispose()
            log.info("api stopped: nats drained, database closed")

    async def graphql_context() -> dict:
        return {"state": app.state.api}

    app = FastAPI(title="adrstack API", lifespan=lifespan)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    graphql = ApiGraphQLRouter(
        build_schema(),
        context_getter=graphql_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
    )
    app.include_router(graphql, prefix="/graphql")
    app.include_router(send_event_router())
    app.include_router(health_router())
    app.include_router(dashboard_router())
    return app
