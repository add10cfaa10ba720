"""The compose health checks of the scheduler and telemetry, run as compose runs them (minus the
container) against a real NATS server's monitoring port: healthy only while the NATS server
lists the service's named connection."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from adrstack.runtime.embedded import find_nats_server
from adrstack.runtime.ports import free_port, port_answers
from tests.helpers import eventually, temp_dir, wait_until

yaml = pytest.importorskip("yaml")
COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


@pytest.fixture
def monitored_nats():
    """(client URL, monitoring URL) of a NATS server of our own with its monitoring port on."""
    tmp = temp_dir("probe")
    port, monitor = free_port(), free_port()
    proc = subprocess.Popen([find_nats_server(), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
                             "-js", "-sd", str(tmp / "nats")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_answers(port) and port_answers(monitor), 15, message="nats-server listening")
        yield f"nats://127.0.0.1:{port}", f"http://127.0.0.1:{monitor}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def probe(service: str, monitor_url: str) -> int:
    test = yaml.safe_load(COMPOSE.read_text())["services"][service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    return subprocess.run([sys.executable, *test[2:]], env={"NATS_MONITOR_URL": monitor_url},
                          capture_output=True, timeout=30).returncode


@pytest.mark.parametrize("service", ["scheduler", "telemetry"])
async def test_healthy_only_while_the_named_connection_is_up(monitored_nats, service):
    url, monitor = monitored_nats
    assert probe(service, monitor) != 0, "healthy with no connection"
    # Another service's connection must not count.
    other = await nats.connect(url, name="adrstack-api")
    try:
        nc = await nats.connect(url, name=f"adrstack-{service}")
        try:
            await eventually(lambda: probe(service, monitor) == 0, 10, message=f"{service} probe healthy")
        finally:
            await nc.close()
        await eventually(lambda: probe(service, monitor) != 0, 10, message=f"{service} probe unhealthy once gone")
    finally:
        await other.close()
