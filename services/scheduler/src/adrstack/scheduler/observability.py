"""The scheduler's /metrics and readiness: its events by lifecycle state, and whether NATS answers."""

from __future__ import annotations

from collections import Counter as Tally
from typing import TYPE_CHECKING

from adrstack.shared.health import HealthServer, nats_check
from adrstack.shared.messages import EventStatus
from adrstack.shared.metrics import Gauge, Registry

if TYPE_CHECKING:
    from .service import Scheduler


def events_by_state(scheduler: "Scheduler") -> dict[tuple, float]:
    tally = Tally()
    if scheduler.timer is not None:
        tally.update(record.event.status.value for _, record in scheduler.timer.events.items())
    # Every state is listed, at 0 too, so a dashboard's series do not appear and vanish.
    return {(("state", state.value),): tally.get(state.value, 0) for state in EventStatus}


def registry(scheduler: "Scheduler") -> Registry:
    r = Registry()
    r.add(Gauge("adrstack_scheduler_events", "DR events in the events bucket, by lifecycle state",
                lambda: events_by_state(scheduler)))
    return r


async def start_health(scheduler: "Scheduler") -> HealthServer:
    s = scheduler.settings
    server = HealthServer({"nats": nats_check(lambda: scheduler.nc)}, registry(scheduler))
    await server.start(s.health_host, s.scheduler_health_port)
    return server
