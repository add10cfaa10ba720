"""`python -m adrstack.telemetry` configured by environment, storing, and stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from adrstack.shared.messages import VenRegistered
from tests.helpers import eventually, stack_env


async def test_runs_as_a_module_and_stops_cleanly_on_sigterm(harness):
    s = harness.settings
    env = stack_env(s, ADRSTACK_DURABLE_NAME="telemetry-proc", ADRSTACK_BATCH_SIZE="100")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adrstack.telemetry", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await harness.publish(
            harness.subjects.ven_registered("ven-9"),
            VenRegistered(ven_id="ven-9", ven_name="b9", registration_id="r9"),
        )
        await eventually(lambda: harness.scalar("select count(*) from vens where ven_id = 'ven-9'"),
                         timeout=30, interval=0.3, message="row from the telemetry process")
        info = await harness.consumer_info("telemetry-proc")
        assert info.config.max_deliver == 10 and info.config.ack_wait == 30
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), timeout=15)
        stderr = (await proc.stderr.read()).decode()
        assert rc == 0, stderr
        assert "telemetry stopped after storing 1 messages" in stderr
        assert "partition upkeep failed" not in stderr  # it ran at start, beside the consumer
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
