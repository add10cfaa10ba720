"""`python -m adrstack.scheduler` with a health port: /healthz, /readyz and /metrics (events by
lifecycle state) over HTTP, against real NATS."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta, timezone

from adrstack.runtime.ports import free_port
from tests.helpers import eventually, http_get, metric, parse_metrics, stack_env, stop_process


async def get(url):
    return await asyncio.to_thread(http_get, url)


async def test_health_and_events_by_state(harness):
    await harness.register_ven("ven-1")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adrstack.scheduler",
        env=stack_env(harness.settings, ADRSTACK_SCHEDULER_HEALTH_PORT=str(port)), stderr=asyncio.subprocess.DEVNULL)
    try:
        async def ready():
            status, _, body = await get(f"{base}/readyz")
            assert status == 200, body
            return json.loads(body)

        assert await eventually(ready, timeout=30, message="readyz 200") == {"status": "ok", "nats": True}
        assert (await get(f"{base}/healthz"))[0] == 200
        later = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
        for event_id, extra in (("ev-now", {}), ("ev-later", {"start_at": later})):
            reply = await harness.request("create", {"event_id": event_id, "ven_ids": ["ven-1"], **extra,
                                                     "intervals": [{"duration": "PT1H", "payload": 1}]})
            assert reply.ok, reply

        async def counted():
            status, ctype, text = await get(f"{base}/metrics")
            assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
            samples = parse_metrics(text)
            assert metric(samples, "adrstack_scheduler_events", state="active") == 1
            assert metric(samples, "adrstack_scheduler_events", state="far") == 1
            return samples

        samples = await eventually(counted, timeout=30, message="events by state")
        assert metric(samples, "adrstack_scheduler_events", state="cancelled") == 0
    finally:
        assert await stop_process(proc) == 0


async def test_not_ready_while_nats_does_not_answer(isolated_settings):
    port = free_port()
    env = stack_env(isolated_settings, NATS_URL=f"nats://127.0.0.1:{free_port()}",
                    ADRSTACK_SCHEDULER_HEALTH_PORT=str(port))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "adrstack.scheduler", env=env,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        async def unavailable():
            status, _, body = await get(f"http://127.0.0.1:{port}/readyz")
            assert status == 503, body
            return json.loads(body)

        assert (await eventually(unavailable, timeout=30, message="readyz 503"))["nats"] is False
        assert (await get(f"http://127.0.0.1:{port}/healthz"))[0] == 200
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
