"""Real NATS JetStream for the scheduler tests: replicas, requests, and reading the stream."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone

import nats
import pytest
from nats.errors import NoRespondersError

from adrstack.scheduler.service import Scheduler
from adrstack.scheduler.settings import SchedulerSettings
from adrstack.shared import kv_keys
from adrstack.shared.jetstream import ensure_kv, ensure_stream
from adrstack.shared.messages import CommandReply, DrEvent, EventTransition, VenRecord, decode


class Harness:
    def __init__(self, settings: SchedulerSettings, nc):
        self.settings = settings
        self.nc = nc
        self.js = nc.jetstream()
        self.subjects = settings.subjects
        self.replicas: list[Scheduler] = []

    async def start_replica(self) -> Scheduler:
        scheduler = Scheduler(self.settings)
        await scheduler.start()
        self.replicas.append(scheduler)
        return scheduler

    async def stop_replica(self, scheduler: Scheduler) -> None:
        await scheduler.stop()
        self.replicas.remove(scheduler)

    async def register_ven(self, ven_id: str) -> None:
        vens = await ensure_kv(self.js, self.settings.vens_bucket)
        record = VenRecord(
            ven_id=ven_id, ven_name=f"name-{ven_id}", registration_id=f"reg-{ven_id}", registered_at=datetime.now(timezone.utc)
        )
        await vens.put(kv_keys.ven_key(ven_id), record.model_dump_json().encode())

    async def request(self, verb: str, body: dict | bytes) -> CommandReply:
        data = body if isinstance(body, bytes) else json.dumps(body, default=str).encode()
        deadline = time.monotonic() + 5
        while True:
            try:
                msg = await self.nc.request(self.subjects.cmd_event(verb), data, timeout=10)
                return decode(CommandReply, msg.data)
            except NoRespondersError:
                # nats-server 2.9 occasionally answers "no responders" to the first request right
                # after another connection subscribed and flushed (~1 in 300 here); only that is
                # retried, and only briefly: a scheduler that never subscribes still fails the test.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def stored(self, event_id: str) -> DrEvent:
        kv = await self.js.key_value(self.settings.events_bucket)
        return DrEvent.model_validate_json((await kv.get(kv_keys.event_key(event_id))).value)

    async def settled(self, event_id: str) -> bool:
        """True when the stored record has no facts left to publish (the commit is visible before its fact)."""
        kv = await self.js.key_value(self.settings.events_bucket)
        return "pending_facts" not in json.loads((await kv.get(kv_keys.event_key(event_id))).value)

    async def count(self, event_id: str, transition: str) -> int:
        """How many messages the stream holds on this event's transition subject."""
        subject = self.subjects.event(event_id, transition)
        info = await self.js.stream_info(self.settings.stream_name, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)

    async def facts(self, event_id: str, transition: str) -> list[EventTransition]:
        """Every message the stream holds on this event's transition subject, oldest first."""
        n = await self.count(event_id, transition)
        if n == 0:
            return []
        sub = await self.js.pull_subscribe(self.subjects.event(event_id, transition), stream=self.settings.stream_name)
        try:
            msgs = []
            while len(msgs) < n:
                msgs += await sub.fetch(n - len(msgs), timeout=5)
        finally:
            await sub.unsubscribe()
        return [decode(EventTransition, m.data) for m in msgs]

    async def last_fact(self, event_id: str, transition: str) -> EventTransition:
        msg = await self.js.get_last_msg(self.settings.stream_name, self.subjects.event(event_id, transition))
        return decode(EventTransition, msg.data)


@pytest.fixture
async def harness(isolated_settings):
    settings = SchedulerSettings(**isolated_settings.model_dump())
    nc = await nats.connect(settings.nats_url)
    await ensure_stream(nc.jetstream(), settings)
    h = Harness(settings, nc)
    try:
        yield h
    finally:
        for scheduler in list(h.replicas):
            await scheduler.stop()
        await nc.close()
