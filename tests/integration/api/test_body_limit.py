"""Request bodies over the limit are refused with 413 (declared or streamed), and the API keeps
serving."""

from __future__ import annotations

import json


async def test_declared_oversized_body_is_413(client):
    body = json.dumps({"ven_id": "v", "event_id": "e", "signal_level": 1, "pad": "x" * (2 * 1024 * 1024)})
    r = await client.post("/send_event", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"


async def test_streamed_oversized_body_is_413(client):
    async def chunks():
        yield b'{"query": "{ vens { venId } }", "pad": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    r = await client.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    after = await client.post("/graphql", json={"query": "{ vens { venId } }"})
    assert after.status_code == 200 and after.json()["data"] == {"vens": []}
