"""``GET /``: the operator dashboard (``static/dashboard/``): VENs, events with their responses,
programs, forms to create, modify and cancel events, and a live chart of each VEN's load and the
aggregate against the event's baseline. It loads one GraphQL query, then follows the GraphQL
subscriptions; its scripts are served from ``/static/`` (no CDN).

The page itself holds no data and is served to anyone. When the API asks for a token (401/403),
it asks the operator for one, keeps it in the tab's sessionStorage (gone when the tab closes) and
sends it as ``Authorization: Bearer`` (and in the websocket's connection_init); a viewer's token is
enough to watch, an operator's to act."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from .settings import ApiSettings
from .vendor_assets import STATIC_DIR


def _operations() -> dict:
    return json.loads((STATIC_DIR / "dashboard" / "operations.json").read_text(encoding="utf-8"))


def dashboard_operation(name: str) -> str:
    """A GraphQL document of the dashboard's, with the fragments it uses (as dashboard.js builds it)."""
    doc = _operations()
    text = doc["operations"][name]
    return "\n".join([text, *(body for fragment, body in doc["fragments"].items() if f"...{fragment}" in text)])


def dashboard_operations() -> list[str]:
    return list(_operations()["operations"])


def dashboard_router(settings: ApiSettings) -> APIRouter:
    router = APIRouter()
    page = (STATIC_DIR / "dashboard" / "index.html").read_text(encoding="utf-8").replace(
        "__OFFLINE_AFTER__", f"{settings.dashboard_offline_after:g}")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    return router
