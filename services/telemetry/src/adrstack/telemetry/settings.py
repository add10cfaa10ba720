"""Telemetry configuration (environment: ``NATS_URL``, ``DATABASE_URL`` plus ``ADRSTACK_*``)."""

from __future__ import annotations

from pydantic import Field

from adrstack.shared.settings import CommonSettings


class TelemetrySettings(CommonSettings):
    # Shared by replicas: they split the stream between them.
    durable_name: str = "telemetry"
    batch_size: int = 500
    fetch_timeout: float = 1.0
    ack_wait_seconds: float = 30.0
    max_deliver: int = 10
    # Redelivery delay for a batch naked on shutdown while the database was down.
    nak_delay_seconds: float = 2.0
    # Backoff while holding a batch the database cannot take yet; must stay below ack_wait.
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 10.0
    max_ack_pending: int = 20000
    # Readings partitions (adrstack.telemetry.partitions): days created this far ahead, days older
    # than the retention dropped whole (None: readings are kept for ever), checked this often.
    readings_retention_days: int | None = Field(None, ge=1)
    readings_partitions_ahead_days: int = Field(7, ge=1)
    partition_upkeep_seconds: float = Field(3600.0, gt=0)
    # /healthz, /readyz and /metrics on a plain-HTTP port of their own; off when None.
    health_host: str = "127.0.0.1"
    telemetry_health_port: int | None = Field(None, ge=0, le=65535)
