"""`python -m adrstack.gateway` runs from the environment alone and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
from openleadr import OpenADRClient

from tests.helpers import eventually, stack_env

from .conftest import free_port


async def test_module_serves_from_env_and_stops_on_sigterm(gateway_settings, bus, tmp_path):
    port = free_port()
    env = stack_env(gateway_settings, ADRSTACK_VTN_HOST="127.0.0.1", ADRSTACK_VTN_PORT=str(port),
                    ADRSTACK_POLL_INTERVAL="7")
    log = open(tmp_path / "gateway.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "adrstack.gateway"], env=env, stdout=log, stderr=subprocess.STDOUT)
    client = OpenADRClient(ven_name="from-env", vtn_url=f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b")
    try:
        async def healthy():
            assert proc.poll() is None, (tmp_path / "gateway.log").read_text()
            async with httpx.AsyncClient() as http:
                return (await http.get(f"http://127.0.0.1:{port}/health", timeout=2)).status_code == 200

        await eventually(healthy, 30, interval=0.2, message="gateway healthy")
        await client.create_party_registration()
        assert client.ven_id and client.poll_frequency.total_seconds() == 7
        assert await bus.last(bus.subjects.ven_registered(client.ven_id)) is not None

        proc.send_signal(signal.SIGTERM)
        await eventually(lambda: proc.poll() is not None, 15, message="gateway exited after SIGTERM")
        assert proc.returncode == 0, (tmp_path / "gateway.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if client.client_session:
            await client.client_session.close()
