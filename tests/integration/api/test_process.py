"""``python -m adrstack.api`` serves on the configured port and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import httpx
import websockets

from adrstack.runtime.ports import free_port

from tests.helpers import eventually, stack_env


async def test_runs_as_a_module_and_drains_on_sigterm(api_settings):
    port = free_port()
    env = stack_env(api_settings, ADRSTACK_API_HOST="127.0.0.1", ADRSTACK_API_PORT=str(port))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adrstack.api", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async def healthy() -> bool:
            assert proc.returncode is None, "the API exited early"
            try:
                async with httpx.AsyncClient() as c:
                    r = await c.get(f"http://127.0.0.1:{port}/health")
                    return r.status_code == 200 and r.json()["nats"] and r.json()["database"]
            except httpx.TransportError:
                return False

        await eventually(healthy, timeout=30, interval=0.2)
        # A live subscription must not keep the process from stopping.
        async with websockets.connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": "subscription { eventUpdates { eventId } }"}}))

            async def subscribed() -> bool:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"http://127.0.0.1:{port}/health")).json()["subscriptions"] == 1

            await eventually(subscribed, timeout=10)
            proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), 20)
            await asyncio.wait_for(ws.wait_closed(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = stderr.decode()
    assert proc.returncode == 0, log
    assert "nats drained" in log, log
