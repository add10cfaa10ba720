"""`python -m adrstack.telemetry` with a health port: /healthz, /readyz (NATS and Postgres) and
/metrics (facts and readings stored, consumer lag, DB batch latency) scraped over HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timezone

from adrstack.runtime.ports import free_port
from adrstack.shared.messages import Reading, ReportData
from tests.helpers import eventually, http_get, metric, parse_metrics, stack_env, stop_process


async def start(env) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "adrstack.telemetry", env=env,
                                                stderr=asyncio.subprocess.DEVNULL)


async def get(url):
    return await asyncio.to_thread(http_get, url)


async def test_ready_and_metrics_follow_what_was_stored(harness):
    s, port = harness.settings, free_port()
    proc = await start(stack_env(s, ADRSTACK_DURABLE_NAME="telemetry-obs", ADRSTACK_TELEMETRY_HEALTH_PORT=str(port)))
    base = f"http://127.0.0.1:{port}"
    try:
        await eventually(lambda: get(f"{base}/healthz"), timeout=30, message="the health port answers")
        ready = await eventually(lambda: _ready(base), timeout=30, message="readyz 200")
        assert ready == {"status": "ok", "nats": True, "database": True}
        assert (await get(f"{base}/healthz"))[0] == 200
        assert (await get(f"{base}/health"))[0] == 200
        at = datetime(2026, 1, 1, tzinfo=timezone.utc)
        await harness.publish(harness.subjects.report_data("ven-m"), ReportData(
            ven_id="ven-m", report_specifier_id="rs", readings=[
                Reading(report_specifier_id="rs", r_id="power", at=at.replace(minute=i), value=i) for i in range(3)]))

        async def scraped():
            status, ctype, text = await get(f"{base}/metrics")
            assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
            samples = parse_metrics(text)
            assert metric(samples, "adrstack_telemetry_readings_stored_total") == 3
            return samples

        samples = await eventually(scraped, timeout=30, message="readings counted")
        assert metric(samples, "adrstack_telemetry_facts_stored_total", type="ReportData") == 1
        assert metric(samples, "adrstack_telemetry_consumer_lag") == 0
        assert metric(samples, "adrstack_telemetry_db_batch_seconds_count") >= 1
        assert metric(samples, "adrstack_telemetry_failed_writes_total") == 0
    finally:
        assert await stop_process(proc) == 0


async def _ready(base):
    status, _, body = await get(f"{base}/readyz")
    return json.loads(body) if status == 200 else None


async def test_not_ready_without_postgres_but_alive(harness):
    s, port = harness.settings, free_port()
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    proc = await start(stack_env(s, DATABASE_URL=nowhere, ADRSTACK_DURABLE_NAME="telemetry-nodb",
                                 ADRSTACK_TELEMETRY_HEALTH_PORT=str(port)))
    base = f"http://127.0.0.1:{port}"
    try:
        async def not_ready():
            status, _, body = await get(f"{base}/readyz")
            assert status == 503
            return json.loads(body)

        body = await eventually(not_ready, timeout=30, message="readyz 503")
        assert body["database"] is False and body["status"] == "unavailable"
        await eventually(lambda: _nats_up(base), timeout=30, message="NATS reported up")
        assert (await get(f"{base}/healthz"))[0] == 200
    finally:
        assert await stop_process(proc) == 0


async def _nats_up(base):
    return json.loads((await get(f"{base}/readyz"))[2])["nats"] is True
