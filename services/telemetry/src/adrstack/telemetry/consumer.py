"""The durable pull consumer: fetch a batch, write it in one transaction, then ack.

Acks only ever follow a commit. While the database is unreachable the batch in hand is held
and retried with backoff, its ack deadline extended (``in_progress``): a Postgres outage must
not burn the bounded ``max_deliver`` and lose readings. Only on shutdown is a held batch naked
for redelivery. A message that can never be stored is copied to the dead-letter stream and
terminated so it cannot block the ones behind it (:mod:`.deadletters`, which also copies what
reaches ``max_deliver``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

import psycopg
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError

from adrstack.shared.jetstream import bind_stream, connect

from .deadletters import DeadLetters
from .decoding import InvalidFact, decode_fact
from .observability import TelemetryMetrics, start_health
from .partitions import maintain
from .rows import RowBatch
from .settings import TelemetrySettings
from .store import write_batch

log = logging.getLogger(__name__)

# Errors in the data itself: retrying the same message cannot help.
PERMANENT_DB_ERRORS = (psycopg.errors.IntegrityError, psycopg.errors.DataError)

AfterCommit = Callable[[list[Msg]], Awaitable[None]]


def consumer_config(settings: TelemetrySettings) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=settings.durable_name,
        name=settings.durable_name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_seconds,
        max_deliver=settings.max_deliver,
        max_ack_pending=settings.max_ack_pending,
        filter_subject=settings.subjects.everything,
    )


class TelemetryConsumer:
    def __init__(self, settings: TelemetrySettings, after_commit: AfterCommit | None = None):
        self.settings = settings
        # Runs between commit and ack; tests use it to crash exactly there.
        self._after_commit = after_commit
        self.nc = None
        self._sub = None
        self._db: psycopg.AsyncConnection | None = None
        self.dead_letters: DeadLetters | None = None
        self.stored = 0  # messages committed since start (for logs and tests)
        self.failed_writes = 0  # transient write failures since start
        self.metrics = TelemetryMetrics(self)

    async def start(self) -> None:
        s = self.settings
        self.nc = await connect(s, name="adrstack-telemetry")
        js = self.nc.jetstream()
        await bind_stream(js, s)
        self.dead_letters = DeadLetters(self.nc, s)
        await self.dead_letters.start()
        try:
            await js.add_consumer(s.stream_name, config=consumer_config(s))
        except BadRequestError as e:
            # Exists with another config (e.g. an older ack_wait): keep using it as it is.
            log.warning("durable %s exists with a different config: %s", s.durable_name, e)
        self._sub = await js.pull_subscribe_bind(durable=s.durable_name, stream=s.stream_name)
        log.info("telemetry ready: durable %s on stream %s", s.durable_name, s.stream_name)

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until ``stop`` is set; the batch in hand is always finished first."""
        while not stop.is_set():
            try:
                msgs = await self._sub.fetch(self.settings.batch_size, timeout=self.settings.fetch_timeout)
            except (NatsTimeoutError, asyncio.TimeoutError):
                self.metrics.lag = 0  # nothing came within fetch_timeout: nothing is waiting
                continue
            except Exception as e:
                if stop.is_set():
                    break
                log.warning("fetch failed: %r", e)
                await _wait(stop, 1.0)
                continue
            await self.process(msgs, stop)
            self.metrics.saw_batch(msgs)

    async def stop(self) -> None:
        # Draining a pull subscription waits for a pull request that never completes (nats-py
        # then times out after 30 s); the batch in hand is already settled, so drop it first.
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if self.dead_letters is not None:
            await self.dead_letters.stop()
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.close()
        log.info("telemetry stopped after storing %d messages", self.stored)

    # ------------------------------------------------------------------ one batch

    async def process(self, msgs: list[Msg], stop: asyncio.Event | None = None) -> None:
        facts, valid = [], []
        for msg in msgs:
            try:
                facts.append(decode_fact(self.settings.subjects, msg.subject, msg.data))
                valid.append(msg)
            except InvalidFact as e:
                await self._terminate(msg, f"invalid: {e}")
        if not valid:
            return
        batch = RowBatch.of(facts)
        try:
            stored = await self._write_patiently(batch, valid, stop)
        except PERMANENT_DB_ERRORS as e:
            log.warning("batch of %d refused (%s); storing message by message", len(valid), e)
            await self._one_by_one(facts, valid)
            return
        if not stored:
            return
        if self._after_commit is not None:
            await self._after_commit(valid)
        for msg in valid:
            await msg.ack()
        self.stored += len(valid)
        self.metrics.stored(facts, batch_readings=len(batch.points))

    async def _one_by_one(self, facts, msgs: list[Msg]) -> None:
        for fact, msg in zip(facts, msgs):
            try:
                await self._write(RowBatch.of([fact]))
            except PERMANENT_DB_ERRORS as e:
                await self._terminate(msg, f"the database refuses it: {type(e).__name__}: {e}")
                continue
            except Exception as e:
                await self._retry_later([msg], e)
                continue
            if self._after_commit is not None:
                await self._after_commit([msg])
            await msg.ack()
            self.stored += 1

    async def _terminate(self, msg: Msg, reason: str) -> None:
        """Dead-letter ``msg``, then terminate it. A copy the dead-letter stream did not take leaves
        it for redelivery instead (bounded by max_deliver, whose advisory copies it then)."""
        log.error("terminating %s: %s", msg.subject, reason)
        if self.dead_letters is not None:
            try:
                await self.dead_letters.bury(msg, reason)
            except Exception as e:
                log.warning("could not store the dead letter (%r); %s redelivered later", e, msg.subject)
                with contextlib.suppress(Exception):
                    await msg.nak(delay=self.settings.nak_delay_seconds)
                return
        await msg.term()

    async def _write_patiently(self, batch: RowBatch, msgs: list[Msg], stop: asyncio.Event | None) -> bool:
        """Write ``batch``, retrying transient failures until it commits (True) or we are
        stopping (False: the messages were naked for redelivery)."""
        delay = self.settings.retry_initial_seconds
        while True:
            try:
                await self._write(batch)
                return True
            except PERMANENT_DB_ERRORS:
                raise
            except Exception as e:
                if stop is None or stop.is_set():
                    await self._retry_later(msgs, e)
                    return False
                self.failed_writes += 1
                await self._drop_database()
                log.warning("database unavailable (%r); holding %d message(s), retrying in %.1fs",
                            e, len(msgs), delay)
                for msg in msgs:
                    with contextlib.suppress(Exception):
                        await msg.in_progress()
                await _wait(stop, delay)
                delay = min(delay * 2, self.settings.retry_max_seconds)

    async def _write(self, batch: RowBatch) -> None:
        conn = await self._database()
        started = time.perf_counter()
        async with conn.transaction():
            await write_batch(conn, batch)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def _retry_later(self, msgs: list[Msg], error: Exception) -> None:
        log.warning("database unavailable (%r); %d message(s) redelivered later", error, len(msgs))
        await self._drop_database()
        for msg in msgs:
            with contextlib.suppress(Exception):
                await msg.nak(delay=self.settings.nak_delay_seconds)

    async def _database(self) -> psycopg.AsyncConnection:
        if self._db is None or self._db.closed:
            self._db = await psycopg.AsyncConnection.connect(self.settings.database_url, autocommit=True)
        return self._db

    async def _drop_database(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                await self._db.close()
        self._db = None


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# After a failed upkeep run (Postgres down), the next try comes this soon (or at the period).
UPKEEP_RETRY_SECONDS = 60.0


async def upkeep_partitions(settings: TelemetrySettings) -> None:
    """One run of the readings partitions' upkeep on a connection of its own."""
    async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True,
                                                     connect_timeout=10) as conn:
        done = await maintain(conn, datetime.now(timezone.utc), settings.readings_partitions_ahead_days,
                              settings.readings_retention_days)
    if done.created or done.dropped or done.deleted:
        log.info("readings partitions: %d created (%d row(s) moved from the default), %d dropped, "
                 "%d stray row(s) deleted", len(done.created), done.moved, len(done.dropped), done.deleted)


async def run_upkeep(settings: TelemetrySettings, stop: asyncio.Event) -> None:
    """Partition upkeep at start and every ``partition_upkeep_seconds`` until ``stop``."""
    while not stop.is_set():
        wait = settings.partition_upkeep_seconds
        try:
            await upkeep_partitions(settings)
        except Exception as e:  # Postgres down or refusing: storing readings does not depend on it
            log.warning("readings partition upkeep failed (%r); trying again later", e)
            wait = min(wait, UPKEEP_RETRY_SECONDS)
        await _wait(stop, wait)


async def serve(settings: TelemetrySettings, stop: asyncio.Event) -> None:
    consumer = TelemetryConsumer(settings)
    upkeep = asyncio.create_task(run_upkeep(settings, stop))
    health = None
    try:
        if settings.telemetry_health_port is not None:
            health = await start_health(consumer)
        await consumer.start()
        await consumer.run(stop)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await upkeep
        await consumer.stop()
        if health is not None:
            await health.stop()


def main() -> None:
    from adrstack.shared.runner import run_service

    settings = TelemetrySettings()
    run_service(lambda stop: serve(settings, stop), settings.log_level)
