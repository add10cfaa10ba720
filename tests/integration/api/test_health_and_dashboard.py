"""/health reflects NATS and Postgres; / serves a dashboard whose query the schema answers."""

from __future__ import annotations

import re


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


async def test_dashboard_page_and_its_query(client):
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<table id=\"vens\"" in page and "<table id=\"events\"" in page
    assert "setInterval(refresh," in page
    # The page's own GraphQL query must stay valid against the schema.
    query = re.search(r"const QUERY = `(.*?)`;", page, re.S).group(1)
    data = (await client.post("/graphql", json={"query": query})).json()
    assert "errors" not in data, data
    assert data["data"] == {"vens": [], "events": []}
