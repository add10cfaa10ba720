"""/health reflects NATS and Postgres; / serves a dashboard whose query the schema answers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from adrstack.api.dashboard import dashboard_operation

from adrstack.api.app import create_app
from adrstack.api.settings import ApiSettings
import httpx


async def test_health_ok(client):
    r = await client.get("/health")
    assert r.status_code == 200
    body = r.json()
    hub = body.pop("subscriptionHub")
    assert body == {"status": "ok", "nats": True, "database": True, "subscriptions": 0}
    # No subscriber yet, so no NATS subscription either: families open on their first subscriber.
    assert (hub["subscribers"], hub["websocketClients"], hub["natsSubscriptions"]) == (0, 0, 0)
    assert set(hub["families"]) == {"events", "ven", "lifecycle", "readings"}


async def test_health_503_when_nats_is_gone(app, client):
    await app.state.api.nc.close()
    r = await client.get("/health")
    assert r.status_code == 503
    assert r.json()["nats"] is False and r.json()["database"] is True and r.json()["status"] != "ok"


async def test_health_503_when_the_database_is_unreachable(api_settings, infra):
    settings = ApiSettings(**{**api_settings.model_dump(), "database_url": infra.database("adrstack_no_such_db")})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            r = await c.get("/health")
    assert r.status_code == 503
    assert r.json()["database"] is False and r.json()["nats"] is True


async def test_dashboard_page_its_files_and_its_snapshot_query(client):
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<table id="vens"' in page and '<table id="events"' in page and '<form id="create-event"' in page
    assert '<meta name="adrstack-offline-after" content="180">' in page
    # Every script and style the page names is served by the api itself.
    for path in re.findall(r'(?:src|href)="(static/[^"]+)"', page):
        asset = await client.get("/" + path)
        assert asset.status_code == 200, path
    assert "http" not in " ".join(re.findall(r'(?:src|href)="([^"]+)"', page))
    # The page's first query, on an empty stack.
    now = datetime.now(timezone.utc)
    data = (await client.post("/graphql", json={
        "query": dashboard_operation("snapshot"),
        "variables": {"since": (now - timedelta(minutes=45)).isoformat(), "until": now.isoformat()}})).json()
    assert "errors" not in data, data
    assert data["data"] == {"vens": [], "groups": [], "events": [], "programs": [], "readings": []}


async def test_graphiql_loads_its_libraries_from_the_api(client):
    r = await client.get("/graphql", headers={"Accept": "text/html"})
    assert r.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', r.text)
    assert sources and all(s.startswith("static/vendor/") for s in sources), sources
    assert "unpkg" not in r.text
    for source in sources:
        asset = await client.get("/" + source)
        assert asset.status_code == 200 and len(asset.content) > 500, source
