"""The api's probes and /metrics: /healthz and /readyz open even with API tokens on, /metrics
behind a token then, and the websocket subscriptions gauge following a real websocket client."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import websockets

from adrstack.runtime.ports import free_port
from tests.helpers import eventually, metric, parse_metrics, stack_env, stop_process

from .helpers import bearer


async def test_probes(client, app):
    assert (await client.get("/healthz")).json() == {"status": "alive"}
    r = await client.get("/readyz")
    body = r.json()
    assert r.status_code == 200 and body.pop("subscriptionHub")["websocketClients"] == 0
    assert body == {"status": "ok", "nats": True, "database": True, "subscriptions": 0}
    await app.state.api.nc.close()
    r = await client.get("/readyz")
    assert r.status_code == 503 and r.json()["nats"] is False
    assert (await client.get("/healthz")).status_code == 200


async def test_with_tokens_on_probes_stay_open_and_metrics_need_a_token(secure_client, tokens):
    assert (await secure_client.get("/healthz")).status_code == 200
    assert (await secure_client.get("/readyz")).status_code == 200
    assert (await secure_client.get("/metrics")).status_code == 401
    r = await secure_client.get("/metrics", headers=bearer(tokens["viewer"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert metric(parse_metrics(r.text), "adrstack_api_graphql_subscriptions") == 0


async def test_metrics_count_a_websocket_subscription(api_settings):
    port = free_port()
    env = stack_env(api_settings, ADRSTACK_API_HOST="127.0.0.1", ADRSTACK_API_PORT=str(port))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "adrstack.api", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    async def subscriptions() -> tuple[float, float]:
        """(live subscriptions, websocket clients) as /metrics says."""
        async with httpx.AsyncClient() as c:
            r = await c.get(f"{base}/metrics")
            assert r.status_code == 200
            parsed = parse_metrics(r.text)
            return (metric(parsed, "adrstack_api_graphql_subscriptions"),
                    metric(parsed, "adrstack_api_websocket_clients"))

    try:
        assert await eventually(lambda: _is(subscriptions(), (0, 0)), timeout=30, message="api serves /metrics")
        async with websockets.connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": "subscription { eventUpdates { eventId } }"}}))
            await eventually(lambda: _is(subscriptions(), (1, 1)), timeout=10, message="one subscription counted")
        await eventually(lambda: _is(subscriptions(), (0, 0)), timeout=10, message="back to none")
    finally:
        await stop_process(proc, 20)


async def _is(value, expected) -> bool:
    return (await value) == expected
