"""Real NATS JetStream + Postgres for the telemetry tests."""

from __future__ import annotations

import asyncio
import contextlib

import nats
import psycopg
import pytest

from adrstack.shared.jetstream import ensure_stream, publish
from adrstack.shared.messages import Message
from adrstack.telemetry.consumer import TelemetryConsumer
from adrstack.telemetry.settings import TelemetrySettings


class Harness:
    def __init__(self, settings: TelemetrySettings, nc):
        self.settings = settings
        self.nc = nc
        self.js = nc.jetstream()
        self.subjects = settings.subjects
        self._running: list[tuple[TelemetryConsumer, asyncio.Event, asyncio.Task]] = []

    def settings_with(self, **changes) -> TelemetrySettings:
        return TelemetrySettings(**{**self.settings.model_dump(), **changes})

    async def start_consumer(self, settings: TelemetrySettings | None = None, after_commit=None):
        consumer = TelemetryConsumer(settings or self.settings, after_commit=after_commit)
        await consumer.start()
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        self._running.append((consumer, stop, task))
        return consumer, task

    async def stop_all(self) -> None:
        for consumer, stop, task in self._running:
            stop.set()
            with contextlib.suppress(BaseException):
                await task
            await consumer.stop()
        self._running.clear()

    async def publish(self, subject: str, message: Message) -> None:
        await publish(self.js, subject, message)

    async def rows(self, sql: str, *params):
        async with await psycopg.AsyncConnection.connect(self.settings.database_url) as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def scalar(self, sql: str, *params):
        return (await self.rows(sql, *params))[0][0]

    async def consumer_info(self, durable: str | None = None):
        return await self.js.consumer_info(self.settings.stream_name, durable or self.settings.durable_name)


@pytest.fixture
async def harness(isolated_settings):
    settings = TelemetrySettings(**isolated_settings.model_dump(), fetch_timeout=0.5)
    nc = await nats.connect(settings.nats_url)
    await ensure_stream(nc.jetstream(), settings)
    h = Harness(settings, nc)
    try:
        yield h
    finally:
        await h.stop_all()
        await nc.close()
