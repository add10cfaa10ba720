"""Two scheduler replicas behind the running stack (`adrstack up` starts one; this module starts a
second `python -m adrstack.scheduler` with the very environment the stack gave its own): an event
whose scheduler is killed with SIGKILL while it is active still completes on time, and each
transition is published once (the VEN sees it active with modificationNumber still 0 and the
interval's currentValue: rules 5 and 14); modifyEvent mutations racing through the replicas' shared
command queue each get their own modificationNumber, +1 each (rule 5, E1_1030), and leave the
stored event, the last `modified` fact and the VEN on the same version."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import threading
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Iterator

import httpx
import nats
import pytest
import websockets

from adrstack.runtime.ports import free_port
from tests.e2e.conftest import _pump
from tests.e2e.test_program_flow import recorder
from tests.e2e.test_spine import CREATE, FactTap, gql, start_ven, ven_name
from tests.helpers import eventually, wait_until

pytestmark = pytest.mark.e2e

MODIFY = """mutation($input: ModifyEventInput!) { modifyEvent(input: $input) { modificationNumber vtnComment
  priority } }"""
EVENT = """query($id: String!) { event(eventId: $id) { status modificationNumber vtnComment priority
  startAt endAt } }"""
TRANSITIONS = ("created", "active", "completed")


class Replica:
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.output: deque = deque(maxlen=2000)

    def log(self) -> str:
        return "\n".join(self.output)


@pytest.fixture(scope="module")
def second_scheduler(stack) -> Iterator[Replica]:
    [own] = stack.service_processes("scheduler")
    env = own.environ()  # NATS_URL, DATABASE_URL, the stack's prefix, stream and buckets
    env["ADRSTACK_SCHEDULER_HEALTH_PORT"] = str(free_port())  # the first replica holds up's
    proc = subprocess.Popen([sys.executable, "-m", "adrstack.scheduler"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=stack.data_dir)
    replica = Replica(proc)
    threading.Thread(target=_pump, args=(proc.stdout, replica.output), daemon=True).start()
    try:
        wait_until(lambda: proc.poll() is None and "scheduler ready" in replica.log(), 30, 0.1,
                   message="second scheduler ready")
        yield replica
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    assert proc.returncode == 0, f"second scheduler exited with {proc.returncode}:\n{replica.log()}"


class EventUpdates:
    """A GraphQL eventUpdates subscription of one event over the stack's websocket, recording
    every update it is sent."""

    def __init__(self, stack, event_id: str):
        self.stack, self.event_id = stack, event_id
        self.updates: list[dict] = []

    async def _live(self) -> int:
        async with httpx.AsyncClient(timeout=5) as http:
            return (await http.get(f"{self.stack.api_url}/health")).json()["subscriptions"]

    async def __aenter__(self):
        before = await self._live()
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.stack.api_port}/graphql",
                                           subprotocols=["graphql-transport-ws"])
        await self.ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(self.ws.recv(), 10))["type"] == "connection_ack"
        query = ('subscription($id: String) { eventUpdates(eventId: $id) { eventId transition status '
                 'modificationNumber } }')
        await self.ws.send(json.dumps({"id": "1", "type": "subscribe",
                                       "payload": {"query": query, "variables": {"id": self.event_id}}}))
        self.task = asyncio.create_task(self._read())
        await eventually(lambda: self._more_than(before), 10, message="subscription live")
        return self

    async def _more_than(self, before: int) -> bool:
        return await self._live() > before

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if msg.get("type") == "next":
                self.updates.append(msg["payload"]["data"]["eventUpdates"])

    def transitions(self) -> list[str]:
        return [u["transition"] for u in self.updates]

    async def __aexit__(self, *exc):
        self.task.cancel()
        await self.ws.close()


async def stored_facts(stack, event_id: str) -> list[tuple[str, dict]]:
    """Every fact the stream holds about the event, in stream order."""
    nc = await nats.connect(stack.settings.nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(f"{stack.subjects.prefix}.event.{event_id}.>", stream=stack.settings.stream_name,
                                 ordered_consumer=True)
        out = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except nats.errors.TimeoutError:
                    return out
                out.append((msg.subject.rsplit(".", 1)[1], json.loads(msg.data)))
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


def scheduler_ready_lines(stack) -> int:
    return sum("scheduler ready" in line for line in list(stack.output))


async def test_a_scheduler_killed_while_the_event_is_active_does_not_stop_or_repeat_it(stack, second_scheduler):
    client, _ = await start_ven(stack, ven_name("sched-kill"))
    received = recorder(client)
    event_id = f"kill-{random.randrange(10**9)}"
    try:
        async with FactTap(stack) as tap, EventUpdates(stack, event_id) as updates:
            start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=4)
            created = await gql(stack, CREATE, {"input": {
                "venIds": [client.ven_id], "eventId": event_id, "startAt": start.isoformat(),
                "intervals": [{"duration": "PT4S", "payload": 1}, {"duration": "PT4S", "payload": 2}]}})
            assert "errors" not in created, created
            end = start + timedelta(seconds=8)

            active = stack.subjects.event(event_id, "active")
            await eventually(lambda: tap.messages(active), 15, message="active fact")
            assert datetime.now(timezone.utc) >= start - timedelta(seconds=1)

            # SIGKILL the stack's own scheduler mid-lifecycle; the second replica carries on.
            [own] = stack.service_processes("scheduler")
            ready_before = scheduler_ready_lines(stack)
            own.send_signal(signal.SIGKILL)
            own.wait(10)
            assert second_scheduler.proc.poll() is None

            async def completed():
                ev = (await gql(stack, EVENT, {"id": event_id}))["data"]["event"]
                return ev if ev and ev["status"] == "completed" else None
            ev = await eventually(completed, 20, message="completed in GraphQL")
            assert datetime.fromisoformat(ev["endAt"]) == end
            done = (await eventually(lambda: tap.messages(stack.subjects.event(event_id, "completed")), 10,
                                     message="completed fact"))[0]
            # On time: the transition happened within a couple of seconds of the event's end.
            completed_at = datetime.fromisoformat(done["occurred_at"])
            assert end - timedelta(seconds=1) <= completed_at <= end + timedelta(seconds=3), (completed_at, end)
            seen_active = [e for e in received if e["event_descriptor"]["event_id"] == event_id
                           and e["event_descriptor"]["event_status"] == "active"]
            assert seen_active, "the VEN never saw it active"
            assert all(e["event_descriptor"]["modification_number"] == 0 for e in seen_active)  # rule 5
            assert seen_active[0]["event_signals"][0]["current_value"] in (1.0, 2.0)  # rule 14

            # The supervisor brings the killed replica back; once it has loaded the bucket nothing
            # is published again for this event.
            await eventually(lambda: scheduler_ready_lines(stack) > ready_before, 30,
                             message="killed scheduler restarted and ready")
            facts = await stored_facts(stack, event_id)
            assert [t for t, _ in facts] == list(TRANSITIONS), facts
            assert [f["event"]["status"] for _, f in facts][1:] == ["active", "completed"]
            # One fact per transition. (Core NATS may carry a fact twice with the same id: a replica
            # repairing the other's just-committed state; JetStream keeps one, see the stream above.)
            for (transition, fact) in facts:
                assert {m["id"] for m in tap.messages(stack.subjects.event(event_id, transition))} == {fact["id"]}
            # The GraphQL subscription passes each on once.
            await eventually(lambda: updates.transitions()[-1:] == ["completed"], 10,
                             message="completed on the GraphQL subscription")
            assert updates.transitions() == list(TRANSITIONS), updates.updates
            assert [u["status"] for u in updates.updates][1:] == ["active", "completed"]
            assert "scheduler exited with" in "\n".join(stack.output)
    finally:
        await client.stop()


async def test_racing_modifications_through_two_replicas_agree_everywhere(stack, second_scheduler):
    client, _ = await start_ven(stack, ven_name("sched-race"))
    received = recorder(client)
    try:
        event_id = f"race-{random.randrange(10**9)}"
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
        created = await gql(stack, CREATE, {"input": {
            "venIds": [client.ven_id], "eventId": event_id, "startAt": start.isoformat(),
            "intervals": [{"duration": "PT1H", "payload": 1}]}})
        assert "errors" not in created, created
        await eventually(lambda: any(e["event_descriptor"]["event_id"] == event_id for e in received), 20,
                         message="event delivered")

        answers = await asyncio.gather(*(
            gql(stack, MODIFY, {"input": {"eventId": event_id, "vtnComment": f"racer {i}", "priority": i + 1}})
            for i in range(4)))
        won = [a["data"]["modifyEvent"] for a in answers if not a.get("errors")]
        lost = [a["errors"] for a in answers if a.get("errors")]
        assert won, answers
        assert all(e[0]["extensions"]["code"] == "CONFLICT" for e in lost), lost
        numbers = sorted(w["modificationNumber"] for w in won)
        assert numbers == list(range(1, len(won) + 1)), numbers  # each applied change its own number
        last = next(w for w in won if w["modificationNumber"] == numbers[-1])

        async def all_modified_facts():
            facts = [f for t, f in await stored_facts(stack, event_id) if t == "modified"]
            return facts if len(facts) == len(won) else None
        facts = await eventually(all_modified_facts, 15, message="one modified fact per applied change")
        assert [f["event"]["modification_number"] for f in facts] == numbers
        final = facts[-1]["event"]
        assert (final["modification_number"], final["vtn_comment"], final["priority"]) == (
            last["modificationNumber"], last["vtnComment"], last["priority"])
        answered = {w["modificationNumber"]: (w["vtnComment"], w["priority"]) for w in won}
        assert all(answered[f["event"]["modification_number"]] == (f["event"]["vtn_comment"], f["event"]["priority"])
                   for f in facts)

        async def stored():
            ev = (await gql(stack, EVENT, {"id": event_id}))["data"]["event"]
            return ev if ev["modificationNumber"] == final["modification_number"] else None
        ev = await eventually(stored, 15, message="the stored event (GraphQL) at the last version")
        assert (ev["vtnComment"], ev["priority"], ev["status"]) == (final["vtn_comment"], final["priority"], "far")

        def ven_version():
            mine = [e for e in received if e["event_descriptor"]["event_id"] == event_id]
            return mine[-1] if mine and mine[-1]["event_descriptor"]["modification_number"] == \
                final["modification_number"] else None
        latest = await eventually(ven_version, 20, message="the VEN at the last version")
        assert latest["event_descriptor"]["vtn_comment"] == final["vtn_comment"]
        assert latest["event_descriptor"]["priority"] == final["priority"]
    finally:
        await client.stop()
