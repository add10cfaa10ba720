"""Issue #7 with real openleadr VENs: they re-send their optIn whenever an event is distributed
again, yet telemetry keeps one history row per VEN and modification and one current answer per
VEN, through a gateway restart and a telemetry restart that replays the whole stream."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import psycopg

from adrstack.gateway.app import Gateway
from adrstack.shared.messages import EventInterval, EventStatus, utcnow
from adrstack.telemetry.consumer import TelemetryConsumer
from adrstack.telemetry.settings import TelemetrySettings
from tests.helpers import eventually

from .test_events import make_event, put_event


class Telemetry:
    def __init__(self, settings: TelemetrySettings):
        self.settings = settings
        self.consumer = TelemetryConsumer(settings)
        self.stop = asyncio.Event()

    async def __aenter__(self):
        await self.consumer.start()
        self.task = asyncio.create_task(self.consumer.run(self.stop))
        return self

    async def __aexit__(self, *exc):
        self.stop.set()
        with contextlib.suppress(BaseException):
            await self.task
        await self.consumer.stop()

    async def settled(self) -> bool:
        js = self.consumer.nc.jetstream()
        info = await js.consumer_info(self.settings.stream_name, self.settings.durable_name)
        stream = await js.stream_info(self.settings.stream_name)
        return info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq == stream.state.last_seq


async def rows(url: str, sql: str):
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await (await conn.execute(sql)).fetchall()


async def test_two_openleadr_vens_one_event_one_modification_a_restart(gateway_settings, bus, vens):
    settings = TelemetrySettings(**gateway_settings.model_dump(include=set(TelemetrySettings.model_fields)),
                                 fetch_timeout=0.5)
    url = settings.database_url

    async def on_event(event):
        return "optIn"

    gateway = Gateway(gateway_settings)
    await gateway.start()
    clients = []
    try:
        for name in ("opt-ven-1", "opt-ven-2"):
            client = vens(name, gateway.vtn_url)
            client.add_handler("on_event", on_event)
            client.add_handler("on_update_event", on_event)
            await client.run()
            clients.append(client)
        ven_ids = sorted(c.ven_id for c in clients)

        async def opt_facts(mod: int | None = None) -> list[dict]:
            facts = [f for v in ven_ids for f in await bus.stored(bus.subjects.opt(v))]
            return [f for f in facts if f["event_id"] == "issue-7" and mod in (None, f["modification_number"])]

        async def answered_by_each(mod: int, copies: int) -> bool:
            facts = await opt_facts(mod)
            return all(sum(f["ven_id"] == v for f in facts) >= copies for v in ven_ids)

        async with Telemetry(settings) as telemetry:
            # Starts in a moment: delivered (far), then again when the clock makes it active, and
            # each distribution is answered with a fresh optIn copy.
            start = utcnow().replace(microsecond=0) + timedelta(seconds=3)
            event = make_event("issue-7", ven_ids, start_at=start,
                               intervals=[EventInterval(duration=timedelta(minutes=30), payload=2)])
            await put_event(bus, event)
            await eventually(lambda: answered_by_each(0, 2), 30, message="optIn to mod 0 re-sent by each VEN")
            await put_event(bus, make_event("issue-7", ven_ids, start_at=start, status=EventStatus.ACTIVE,
                                            modification_number=1,
                                            intervals=[EventInterval(duration=timedelta(minutes=30), payload=3)]))
            await eventually(lambda: answered_by_each(1, 1), 20, message="optIn to mod 1 from each VEN")
            await eventually(telemetry.settled, 10, message="telemetry caught up")

        # The gateway restarts; each VEN asks for its events again and answers them all again.
        await gateway.stop()
        gateway = Gateway(gateway_settings)
        await gateway.start()
        before = len(await opt_facts(1))
        for client in clients:
            response_type, payload = await client.request_event()
            assert response_type == "oadrDistributeEvent" and payload["events"], payload
            await client._on_event(payload)  # what openleadr's poll loop does with a distribution
        await eventually(lambda: _more(opt_facts(1), before + 2), 10, message="optIn to mod 1 re-sent")

        # Telemetry restarts, and a second one with a lost durable replays the whole stream.
        async with Telemetry(settings) as telemetry:
            await eventually(telemetry.settled, 10, message="restarted telemetry caught up")
        replay = TelemetrySettings(**{**settings.model_dump(), "durable_name": "replay"})
        async with Telemetry(replay) as telemetry:
            await eventually(telemetry.settled, 10, message="replay caught up")
    finally:
        await gateway.stop()

    facts = await opt_facts()
    assert len(facts) >= 7, len(facts)  # the re-sent copies really were published
    assert len({f["id"] for f in facts}) == len(facts)
    history = await rows(url, "select ven_id, modification_number, opt_type from event_responses "
                              "where event_id = 'issue-7' order by ven_id, modification_number")
    assert history == [(v, mod, "optIn") for v in ven_ids for mod in (0, 1)]
    state = await rows(url, "select ven_id, modification_number, opt_type from event_opt_states "
                            "where event_id = 'issue-7' order by ven_id")
    assert state == [(v, 1, "optIn") for v in ven_ids]


async def _more(facts_coro, n: int) -> bool:
    return len(await facts_coro) >= n
