"""Scheduler configuration (environment: ``NATS_URL`` plus ``ADRSTACK_*``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from adrstack.shared.settings import CommonSettings


class SchedulerSettings(CommonSettings):
    # Replicas share command requests through this core-NATS queue group.
    queue_group: str = "scheduler"
    # KV history of the events bucket: enough to see the last few transitions of an event.
    # Upper bound on how long the timer loop sleeps, so clock jumps are noticed quickly.
    timer_max_sleep: float = 1.0
    # A full re-read of the events bucket, in case a KV watch silently stopped (reconnects).
    timer_resync_seconds: float = 30.0
    publish_timeout: float = 5.0
    # Optimistic-concurrency retries for a command that loses a CAS race.
    command_retries: int = 5
    # Programs' occurrences become events this far ahead (at least their notification ahead).
    program_horizon: timedelta = timedelta(days=2)
    # How often programs are planned again (besides on every program change).
    program_plan_seconds: float = 60.0
    # /healthz, /readyz and /metrics on a plain-HTTP port of their own; off when None.
    health_host: str = "127.0.0.1"
    scheduler_health_port: int | None = Field(None, ge=0, le=65535)
