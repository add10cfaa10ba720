"""The FastAPI app factory. Nothing connects at import time: NATS and the database engine
are opened in the lifespan and closed (NATS drained) when the server stops."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from adrstack.shared.db import async_engine
from adrstack.shared.idempotency import IdempotencyKeys
from adrstack.shared.jetstream import MissingInfrastructure, bind_kv, connect

from .auth import AuthMiddleware
from .body_limit import BodyLimitMiddleware
from .dashboard import dashboard_router
from .fanout import Hub
from .graphql_router import ApiGraphQLRouter
from .groups import Groups
from .programs import IDEMPOTENCY_NAMESPACE, Programs
from .health import health_router
from .provisioning import Provisioning
from .report_requests import IDEMPOTENCY_NAMESPACE as REPORT_KEYS
from .report_requests import ReportRequests
from .scheduler_client import SchedulerClient
from .ven_commands import GatewayClient
from .schema import build_schema
from .send_event import send_event_router
from .settings import ApiSettings
from .state import ApiState
from .static_assets import STATIC_PATH, static_files
from .store import Store

log = logging.getLogger(__name__)


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings, name="adrstack-api")
        try:
            provisioning_kv = await bind_kv(nc.jetstream(), settings.provisioning_bucket)
            groups_kv = await bind_kv(nc.jetstream(), settings.groups_bucket)
            programs_kv = await bind_kv(nc.jetstream(), settings.programs_bucket)
            # Program edits' idempotency keys, beside the scheduler's event-command keys (own namespace).
            commands_kv = await bind_kv(nc.jetstream(), settings.commands_bucket)
        except MissingInfrastructure as e:
            logging.getLogger("adrstack.api").error("not starting: %s", e)
            await nc.close()
            raise
        engine = async_engine(settings.database_url)
        store = Store(engine)
        groups = Groups(groups_kv, store)
        app.state.api = ApiState(
            settings=settings,
            nc=nc,
            store=store,
            scheduler=SchedulerClient(nc, settings.subjects, settings.command_timeout),
            gateway=GatewayClient(nc, settings.subjects, settings.command_timeout),
            provisioning=Provisioning(provisioning_kv),
            groups=groups,
            programs=Programs(programs_kv, store, groups,
                              keys=IdempotencyKeys(commands_kv, IDEMPOTENCY_NAMESPACE)),
            report_requests=ReportRequests(nc, settings.subjects, settings.command_timeout,
                                           keys=IdempotencyKeys(commands_kv, REPORT_KEYS)),
            hub=Hub(nc, settings.subjects, settings.subscription_queue),
        )
        log.info("api ready: nats %s, subject prefix %s, API tokens %s%s", settings.nats_url,
                 settings.subject_prefix, "required" if settings.api_auth else "not required (ADRSTACK_API_AUTH off)",
                 ", production mode" if settings.api_production else "")
        try:
            yield
        finally:
            await app.state.api.hub.close()
            # Drain: in-flight requests get their replies, subscriptions end, then close.
            try:
                await nc.drain()
            except Exception as e:
                log.warning("nats drain failed: %s", e)
            await engine.dispose()
            log.info("api stopped: nats drained, database closed")

    async def graphql_context() -> dict:
        return {"state": app.state.api}

    production = settings.api_production
    app = FastAPI(title="adrstack API", lifespan=lifespan, docs_url=None if production else "/docs",
                  redoc_url=None if production else "/redoc", openapi_url=None if production else "/openapi.json")
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes,
                       graphql_max_body_bytes=settings.graphql_body_limit)
    # Added last, so it runs first: an unauthenticated request is refused before its body is read.
    app.add_middleware(AuthMiddleware)
    graphql = ApiGraphQLRouter(
        build_schema(settings),
        production=production,
        context_getter=graphql_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
    )
    app.include_router(graphql, prefix="/graphql")
    app.include_router(send_event_router())
    app.include_router(health_router())
    app.include_router(dashboard_router(settings))
    app.mount(STATIC_PATH, static_files(), name="static")
    return app
