"""`python -m adrstack.scheduler` configured by environment, answering, and stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from tests.helpers import eventually, stack_env


def service_env(settings) -> dict[str, str]:
    return stack_env(settings)


async def test_runs_as_a_module_and_stops_cleanly_on_sigterm(harness):
    await harness.register_ven("ven-1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adrstack.scheduler", env=service_env(harness.settings),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async def answers():
            reply = await harness.request("create", {"event_id": "ev-p", "ven_ids": ["ven-1"],
                                                     "intervals": [{"duration": "PT1H", "payload": 1}]})
            return reply.ok

        await eventually(answers, timeout=30, interval=0.5, message="scheduler process answers")
        assert (await harness.stored("ev-p")).status.value == "active"
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), timeout=15)
        stderr = (await proc.stderr.read()).decode()
        assert rc == 0, stderr
        assert "scheduler stopped" in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
