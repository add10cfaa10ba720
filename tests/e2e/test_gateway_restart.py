"""A gateway killed mid-work comes back (supervised), VENs keep their registration, and an
event created while it was down is still delivered."""

from __future__ import annotations

import random
import signal

import httpx
import pytest

from tests.e2e.test_spine import CREATE, FactTap, gql, start_ven, ven_name
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


async def test_pending_event_survives_a_gateway_restart(stack):
    async with FactTap(stack) as tap:
        client, received = await start_ven(stack, ven_name("restart"))
        try:
            ven_id = client.ven_id
            registered = stack.subjects.ven_registered(ven_id)
            await eventually(lambda: tap.messages(registered), 10, message="registration fact")
            registrations_before = len(tap.messages(registered))
            [gateway] = stack.service_processes("gateway")
            old_pid = gateway.pid
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(10)

            # The scheduler is still up: the event is stored while no gateway runs.
            event_id = f"pending-{random.randrange(10**9)}"
            created = await gql(stack, CREATE, {"input": {
                "venIds": [ven_id], "eventId": event_id, "intervals": [{"duration": "PT30M", "payload": 3.0}]}})
            assert "errors" not in created, created

            def restarted():
                procs = stack.service_processes("gateway")
                return procs and procs[0].pid != old_pid

            await eventually(restarted, 30, message="supervisor restarted the gateway")

            async def healthy():
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"http://127.0.0.1:{stack.vtn_port}/health")).status_code == 200

            await eventually(healthy, 30, message="restarted gateway healthy")
            await eventually(lambda: any(e["event_descriptor"]["event_id"] == event_id for e in received), 30,
                             message="pending event delivered after restart")
            # The VEN kept polling with its ven_id: it never registered again.
            assert len(tap.messages(registered)) == registrations_before
            assert "restart" in " ".join(stack.output).lower() or "exited" in " ".join(stack.output).lower()
        finally:
            await client.stop()
