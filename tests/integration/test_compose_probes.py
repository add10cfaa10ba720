"""The compose health checks of the scheduler and telemetry, run as compose runs them (minus the
container) against the real services: healthy only while the service's /readyz answers 200 on the
health port its ADRSTACK_*_HEALTH_PORT variable names."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from adrstack.runtime.ports import free_port
from adrstack.shared.health import HealthServer
from tests.helpers import eventually, stack_env, stop_process

yaml = pytest.importorskip("yaml")
COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


def healthcheck(service: str) -> list[str]:
    test = yaml.safe_load(COMPOSE.read_text())["services"][service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    return test[2:]


def probe(service: str, port: int) -> int:
    """The exit status of the service's compose health check, its port variable set to ``port``."""
    args = healthcheck(service)
    return subprocess.run([sys.executable, *args], env={args[-1]: str(port)}, capture_output=True,
                          timeout=30).returncode


async def aprobe(service: str, port: int) -> int:
    return await asyncio.to_thread(probe, service, port)


@pytest.mark.parametrize("service", ["scheduler", "telemetry"])
async def test_healthy_only_while_the_service_is_ready(isolated_settings, service):
    port = free_port()
    assert await aprobe(service, port) != 0, "healthy with nothing listening"
    variable = healthcheck(service)[-1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"adrstack.{service}", env=stack_env(isolated_settings, **{variable: str(port)}),
        stderr=asyncio.subprocess.DEVNULL)
    try:
        async def healthy() -> bool:
            return await aprobe(service, port) == 0

        await eventually(healthy, 30, interval=0.25, message=f"{service} probe healthy")
    finally:
        assert await stop_process(proc) == 0
    assert await aprobe(service, port) != 0, "healthy once the service has stopped"


async def test_a_port_that_answers_503_is_unhealthy():
    server = HealthServer({"nats": lambda: False})
    await server.start("127.0.0.1", 0)
    try:
        assert await aprobe("scheduler", server.port) != 0
    finally:
        await server.stop()
