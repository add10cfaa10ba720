"""The gateway's probes and metrics over HTTP, on the VTN port and on the plain health port, with
real openleadr VENs: polls, registrations and readings counted; not ready once NATS is gone."""

from __future__ import annotations

import asyncio
import json

import pytest

from adrstack.gateway.app import Gateway
from adrstack.gateway.settings import GatewaySettings
from tests.helpers import http_get, metric, parse_metrics

from .conftest import free_port
from .test_report_ingest import reporting_ven, send, update


@pytest.fixture
async def observed_gateway(gateway_settings):
    settings = GatewaySettings(**{**gateway_settings.model_dump(), "health_port": free_port()})
    gw = Gateway(settings)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def get(url):
    return await asyncio.to_thread(http_get, url)


async def scrape(url) -> dict:
    status, content_type, text = await get(url)
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4"), (status, content_type)
    return parse_metrics(text)


async def test_polls_registrations_and_readings_are_counted(observed_gateway, vens):
    gw = observed_gateway
    ports = (gw.port, gw.settings.health_port)
    client = await reporting_ven(vens, gw, "counted")
    await client.create_party_registration()  # the same VEN again
    for _ in range(3):
        await client._poll()
    assert await send(client, update(client, 1, intervals=4)) == 200
    for port in ports:  # the same numbers on both ports: one process, one set of counters
        samples = await scrape(f"http://127.0.0.1:{port}/metrics")
        assert metric(samples, "adrstack_gateway_registrations_total", kind="new") == 1
        assert metric(samples, "adrstack_gateway_registrations_total", kind="again") == 1
        assert metric(samples, "adrstack_gateway_polls_total") >= 3  # plus any the client made itself
        assert metric(samples, "adrstack_gateway_reports_total") == 1
        assert metric(samples, "adrstack_gateway_readings_total") == 4
        assert metric(samples, "adrstack_gateway_vens") == 1


async def test_ready_while_nats_is_connected_and_alive_after(observed_gateway):
    gw = observed_gateway
    for port in (gw.port, gw.settings.health_port):
        for path in ("/readyz", "/health"):
            status, _, body = await get(f"http://127.0.0.1:{port}{path}")
            assert status == 200 and json.loads(body)["nats"] == "connected", body
        assert (await get(f"http://127.0.0.1:{port}/healthz"))[:1] == (200,)
    await gw.nc.close()  # the gateway's NATS connection is gone for good
    for port in (gw.port, gw.settings.health_port):
        status, _, body = await get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503 and json.loads(body)["status"] == "unavailable", body
        assert (await get(f"http://127.0.0.1:{port}/healthz"))[0] == 200
