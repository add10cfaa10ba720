"""`python -m adrstack.gateway` with ADRSTACK_LOG_FORMAT=json: every line is a JSON object, and the
lines about a real openleadr VEN's registration carry its ven_id."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from openleadr import OpenADRClient

from tests.helpers import eventually, http_get, stack_env

from .conftest import free_port


async def test_registration_lines_carry_the_ven_id(gateway_settings, tmp_path):
    port = free_port()
    env = stack_env(gateway_settings, ADRSTACK_VTN_HOST="127.0.0.1", ADRSTACK_VTN_PORT=str(port),
                    ADRSTACK_LOG_FORMAT="json")
    log_path = tmp_path / "gateway.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "adrstack.gateway"], env=env, stdout=log, stderr=subprocess.STDOUT)
    client = OpenADRClient(ven_name="json-logged", vtn_url=f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b")
    try:
        def ready() -> bool:
            assert proc.poll() is None, log_path.read_text()
            return http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200

        await eventually(ready, 30, interval=0.2, message="gateway ready")
        await client.create_party_registration()
        assert client.ven_id

        def registered() -> dict:
            lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
            return next((line for line in lines if line["message"].startswith("registered VEN")), None)

        line = await eventually(registered, 15, message="the registration logged")
        assert line["ven_id"] == client.ven_id and line["level"] == "INFO"
        assert line["logger"].startswith("adrstack.gateway")
        proc.send_signal(signal.SIGTERM)
        await eventually(lambda: proc.poll() is not None, 15, message="gateway exited after SIGTERM")
        assert proc.returncode == 0
        for text in log_path.read_text().splitlines():  # nothing escaped the JSON formatter
            json.loads(text)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if client.client_session:
            await client.client_session.close()
