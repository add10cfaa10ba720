"""Wiring: connect, ensure the stream and bucket, serve commands, run the timer loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adrstack.shared.jetstream import bind_kv, bind_stream, connect
from adrstack.shared.subjects import EVENT_COMMANDS

from .handlers import CommandHandlers
from .idempotency import IdempotentCommands
from .observability import start_health
from .overlaps import OverlapGuard
from .programs import ProgramPlanner
from .settings import SchedulerSettings
from .timers import TransitionTimer

log = logging.getLogger("adrstack.scheduler")


class Scheduler:
    """One scheduler replica; ``start`` returns once it serves commands and follows the bucket."""

    def __init__(self, settings: SchedulerSettings):
        self.settings = settings
        self.nc = None
        self.timer: TransitionTimer | None = None
        self.handlers: CommandHandlers | None = None
        self._timer_stop = asyncio.Event()
        self._timer_task: asyncio.Task | None = None
        self.planner: ProgramPlanner | None = None
        self._planner_task: asyncio.Task | None = None

    async def start(self) -> None:
        s = self.settings
        self.nc = await connect(s, name="adrstack-scheduler")
        js = self.nc.jetstream()
        await bind_stream(js, s)
        events = await bind_kv(js, s.events_bucket)
        commands = await bind_kv(js, s.commands_bucket)
        handlers = self.handlers = CommandHandlers(
            js, events, s.vens_bucket, s.subjects, s.stream_name, publish_timeout=s.publish_timeout,
            retries=s.command_retries, idempotent=IdempotentCommands(commands),
        )
        self.timer = TransitionTimer(
            js,
            events,
            s.subjects,
            s.stream_name,
            max_sleep=s.timer_max_sleep,
            resync_seconds=s.timer_resync_seconds,
            publish_timeout=s.publish_timeout,
        )
        self._timer_task = asyncio.create_task(self.timer.run(self._timer_stop))
        ready = asyncio.create_task(self.timer.ready.wait())
        await asyncio.wait([ready, self._timer_task], return_when=asyncio.FIRST_COMPLETED)
        if self._timer_task.done():
            ready.cancel()
            self._timer_task.result()  # raises why the timer loop could not start
        # After the timer's mirror of the events bucket is loaded: the planner reads it.
        programs = await bind_kv(js, s.programs_bucket)
        self.planner = ProgramPlanner(programs, handlers, self.timer.events, s.program_horizon,
                                      period=s.program_plan_seconds)
        # Rule 18 reads both mirrors, so the programs are loaded before the first command is served.
        await self.planner.load()
        handlers.overlaps = OverlapGuard(self.timer.events, self.planner.programs)
        for verb in EVENT_COMMANDS:
            await self.nc.subscribe(s.subjects.cmd_event(verb), queue=s.queue_group, cb=handlers.callback(verb))
        await self.nc.flush()
        self._planner_task = asyncio.create_task(self.planner.run(self._timer_stop))
        log.info("scheduler ready: commands on %s.cmd.event.*, events bucket %s", s.subject_prefix, s.events_bucket)

    async def stop(self) -> None:
        """Stop firing transitions, answer the requests in flight, then drain NATS."""
        self._timer_stop.set()
        if self._planner_task is not None:
            with contextlib.suppress(Exception):
                await self._planner_task
        elif self.planner is not None:
            await self.planner.programs.stop()  # loaded, but start() failed before the planner ran
        if self._timer_task is not None:
            with contextlib.suppress(Exception):
                await self._timer_task
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        if self.handlers is not None:
            await self.handlers.stop()
        log.info("scheduler stopped")


async def serve(settings: SchedulerSettings, stop: asyncio.Event) -> None:
    scheduler = Scheduler(settings)
    health = None
    try:
        if settings.scheduler_health_port is not None:
            health = await start_health(scheduler)
        await scheduler.start()
        await stop.wait()
    finally:
        await scheduler.stop()
        if health is not None:
            await health.stop()


def main() -> None:
    from adrstack.shared.runner import run_service

    settings = SchedulerSettings()
    run_service(lambda stop: serve(settings, stop), settings.log_level)
