"""The /send_event body checks answer in the API's JSON error shape (no NATS needed:
they fail before the handler runs)."""

import httpx
import pytest
from fastapi import FastAPI

from adrstack.api.auth import OPEN, remember
from adrstack.api.send_event import send_event_router


@pytest.fixture
async def client():
    app = FastAPI()
    app.include_router(send_event_router())

    async def as_open_caller(scope, receive, send):  # what the app's AuthMiddleware does with tokens off
        remember(scope, OPEN)
        await app(scope, receive, send)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=as_open_caller), base_url="http://api") as c:
        yield c


@pytest.mark.parametrize(
    "body, field",
    [
        ({"ven_id": "v", "event_id": "e", "signal_level": 4}, "signal_level"),
        ({"ven_id": "v", "event_id": "e", "signal_level": -1}, "signal_level"),
        ({"ven_id": "v", "event_id": "e", "signal_level": "two"}, "signal_level"),
        ({"ven_id": "v", "event_id": "e", "signal_level": "2"}, "signal_level"),
        ({"ven_id": "v", "event_id": "e", "signal_level": True}, "signal_level"),
        ({"ven_id": "v", "event_id": "e", "signal_level": 2.5}, "signal_level"),
        ({"event_id": "e", "signal_level": 2}, "ven_id"),
        ({"ven_id": "v", "event_id": "e"}, "signal_level"),
        ({"ven_id": "v", "event_id": "a b", "signal_level": 2}, "event_id"),
        ({"ven_id": "v.x", "event_id": "e", "signal_level": 2}, "ven_id"),
    ],
)
async def test_bad_body_is_422_in_the_api_error_shape(client, body, field):
    r = await client.post("/send_event", json=body)
    assert r.status_code == 422
    data = r.json()
    assert set(data) == {"error", "message", "field"}
    assert data["error"] == "invalid"
    assert data["field"] == field
    assert data["message"].startswith(f"{field}: ")


async def test_not_json_is_422_without_field(client):
    r = await client.post("/send_event", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"] == "invalid"
    assert r.json()["field"] is None
    assert "JSON object" in r.json()["message"]
