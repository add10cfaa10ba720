"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` and the older ``/health``
(200 when NATS is connected and Postgres answers, else 503), ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from adrstack.shared.health import database_check, nats_check, readiness
from adrstack.shared.metrics import CONTENT_TYPE, Gauge, Registry

from .state import ApiState


def api_metrics(state: ApiState) -> Registry:
    r = Registry()
    # Counted by the subscriptions' fan-out hub (fanout.py).
    r.add(Gauge("adrstack_api_graphql_subscriptions", "Live GraphQL subscriptions",
                lambda: state.hub.subscriber_count))
    r.add(Gauge("adrstack_api_websocket_clients", "Websocket clients with a live subscription",
                lambda: state.hub.stats()["websocketClients"]))
    return r


def health_router() -> APIRouter:
    router = APIRouter()

    async def ready(request: Request) -> JSONResponse:
        state: ApiState = request.app.state.api
        status, body = await readiness({"nats": nats_check(lambda: state.nc),
                                        "database": database_check(state.store.ping)},
                                       extra={"subscriptions": state.hub.subscriber_count,
                                              "subscriptionHub": state.hub.stats()})
        return JSONResponse(body, status_code=status)

    router.add_api_route("/health", ready, methods=["GET"])
    router.add_api_route("/readyz", ready, methods=["GET"])

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "alive"})

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        state: ApiState = request.app.state.api
        registry = getattr(request.app.state, "metrics", None)
        if registry is None:  # built once per app, on first scrape: nothing at import or start-up
            registry = request.app.state.metrics = api_metrics(state)
        return Response(registry.render(), media_type=None, headers={"Content-Type": CONTENT_TYPE})

    return router
