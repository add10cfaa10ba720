"""Telemetry's /metrics and readiness: what it stored, how far behind the stream it is, and how
long its database batches take."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from adrstack.shared.health import HealthServer, database_check, nats_check
from adrstack.shared.metrics import Counter, Gauge, Histogram, Registry

if TYPE_CHECKING:
    from .consumer import TelemetryConsumer


class TelemetryMetrics:
    def __init__(self, consumer: "TelemetryConsumer") -> None:
        # Unknown until the first fetch; -1 says so rather than a reassuring 0.
        self.lag = -1
        self.registry = Registry()
        self.facts = self.registry.add(Counter(
            "adrstack_telemetry_facts_stored_total", "Facts committed to Postgres, by message type"))
        self.readings = self.registry.add(Counter(
            "adrstack_telemetry_readings_stored_total", "Readings (report data points) committed to Postgres"))
        self.registry.add(Gauge(
            "adrstack_telemetry_consumer_lag", "Messages of the stream the durable consumer has not taken yet "
            "(after the last batch; -1 before the first fetch)", lambda: self.lag))
        self.registry.add(Gauge(
            "adrstack_telemetry_failed_writes_total", "Transient database write failures (batches retried)",
            lambda: consumer.failed_writes, kind="counter"))
        self.batch_seconds = self.registry.add(Histogram(
            "adrstack_telemetry_db_batch_seconds", "Time to write and commit one batch to Postgres"))

    def saw_batch(self, msgs) -> None:
        if msgs:
            # JetStream tells with each message how many were still pending behind it.
            self.lag = msgs[-1].metadata.num_pending

    def stored(self, facts, batch_readings: int) -> None:
        for fact in facts:
            self.facts.inc(type=type(fact).__name__)
        self.readings.inc(batch_readings)


async def start_health(consumer: "TelemetryConsumer") -> HealthServer:
    s = consumer.settings

    async def ping() -> None:
        async with await psycopg.AsyncConnection.connect(s.database_url, connect_timeout=2) as conn:
            await conn.execute("select 1")

    server = HealthServer({"nats": nats_check(lambda: consumer.nc), "database": database_check(ping)},
                          consumer.metrics.registry)
    await server.start(s.health_host, s.telemetry_health_port)
    return server
