"""The program planner: programs' recurring schedules become DR events ahead of time.

For each program (the ``openadr-programs`` bucket, mirrored) and each occurrence of its schedule
that starts within the lookahead (``program_horizon``, and never less than the program's
notification plus one planning period, so an occurrence always reaches VENs with its notification),
the planner creates the event ``prg-<program_id>-<yyyymmdd>`` through the command path (KV create):
another replica or a restarted scheduler gets "exists" and moves on, so an occurrence is created once
and gets one ``created`` fact. An occurrence whose notification time has already passed when it is
first planned is not created.

When a program changes, its events that have not started yet (far or near) follow it: modified
(same event id, next modification number) when their window, signal or targets changed, cancelled
when their day is no longer in the schedule (rules, exclusion dates, the program deleted or left
without enrolled VENs and groups). Active, completed and cancelled events are never touched.

A program with ``refuse_overlaps`` (2.0b rule 18, A_E3_0530; see :mod:`.overlaps`) has its own
occurrences checked like any event: one that would overlap another event of its market context is
not created (or not moved there), and is logged once. It is tried again only when the event that
blocked it changed (modified, cancelled, completed or gone) or the occurrence itself changed.

:func:`plan` is the pure decision; :class:`ProgramPlanner` carries it out.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable, Iterable, Mapping

from nats.js.kv import KeyValue
from pydantic import ValidationError

from adrstack.shared import kv_keys
from adrstack.shared.lifecycle import TERMINAL
from adrstack.shared.kv_mirror import KvMirror
from adrstack.shared.messages import (
    CreateEventCommand,
    DrEvent,
    EventInterval,
    EventStatus,
    Transition,
    utcnow,
)
from adrstack.shared.programs import (
    PROGRAM_CANCEL,
    ProgramRecord,
    occurrence_event_id,
    occurrences,
    parse_occurrence_event_id,
)

from .commands import CommandRejected, build_event, clock_status, ensure_modifiable
from .overlaps import Overlap

log = logging.getLogger(__name__)

PROGRAM_PREFIX = kv_keys.PROGRAM_RECORDS.removesuffix(">")
CHANGEABLE = frozenset({EventStatus.FAR, EventStatus.NEAR})
# The fields a program decides; an event differing in any of them is modified.
PROGRAM_FIELDS = ("start_at", "intervals", "targets", "signal_name", "signal_type", "priority", "market_context",
                  "response_required", "notification")


def occurrence_command(program: ProgramRecord, day: date, start: datetime, end: datetime,
                       revival: int = 0) -> CreateEventCommand:
    return CreateEventCommand(
        event_id=occurrence_event_id(program.program_id, day, revival),
        ven_ids=list(program.ven_ids),
        group_ids=list(program.group_ids),
        intervals=[EventInterval(duration=end - start, payload=program.level)],
        signal_name=program.signal_name,
        signal_type=program.signal_type,
        start_at=start,
        priority=program.priority,
        market_context=program.market_context,
        response_required=program.response_required,
        notification=program.notification or None,
        vtn_comment=f"program {program.program_id}",
    )


def _fields(event: DrEvent) -> tuple:
    return tuple(getattr(event, name) for name in PROGRAM_FIELDS)


@dataclass
class Plan:
    create: list[CreateEventCommand] = field(default_factory=list)
    modify: list[CreateEventCommand] = field(default_factory=list)  # the occurrence as it should be now
    cancel: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.modify or self.cancel)


def plan(programs: Mapping[str, ProgramRecord], events: Iterable[DrEvent], now: datetime, horizon: timedelta,
         margin: timedelta = timedelta(0)) -> Plan:
    """What to do now so that the events match the programs (pure; ``events``: the bucket's events)."""
    by_program: dict[str, dict[date, DrEvent]] = {}  # each day's latest occurrence event
    revivals: dict[str, int] = {}
    for event in events:
        parsed = parse_occurrence_event_id(event.event_id)
        if parsed is not None:
            days = by_program.setdefault(parsed[0], {})
            if parsed[1] not in days or parsed[2] > revivals[days[parsed[1]].event_id]:
                days[parsed[1]] = event
            revivals[event.event_id] = parsed[2]
    out = Plan()
    for program_id in sorted(set(programs) | set(by_program)):
        program = programs.get(program_id)
        existing = by_program.get(program_id, {})
        wanted: dict[date, CreateEventCommand] = {}
        if program is not None and program.enrolled:
            lookahead = max(horizon, program.notification + margin)
            latest = max((e.start_at for e in existing.values()), default=now)
            until = max(now + lookahead, latest + timedelta(days=1))
            for occ in occurrences(program.schedule, now - timedelta(days=2), until):
                wanted[occ.day] = occurrence_command(program, occ.day, occ.start, occ.end)
            for day, command in wanted.items():
                start = command.start_at
                if not (now <= start - program.notification and start <= now + lookahead):
                    continue
                before = existing.get(day)
                if before is None:
                    out.create.append(command)
                elif before.status == EventStatus.CANCELLED and before.cancel_reason == PROGRAM_CANCEL:
                    # Its day was excluded and is back: a new event (an operator's cancel stays).
                    out.create.append(command.model_copy(update={"event_id": occurrence_event_id(
                        program_id, day, revivals[before.event_id] + 1)}))
        for day, event in sorted(existing.items()):
            if event.status not in CHANGEABLE or event.start_at <= now:
                continue  # past, active or over: left alone
            command = wanted.get(day)
            if command is not None and command.event_id != event.event_id:  # a revived occurrence
                command = command.model_copy(update={"event_id": event.event_id})
            if command is None or command.start_at <= now:
                out.cancel.append(event.event_id)
            else:
                try:
                    differs = _fields(desired_event(command, event, now)) != _fields(event)
                except CommandRejected as e:
                    log.error("program %s: cannot apply to event %s: %s", program_id, event.event_id, e.message)
                    continue
                if differs:
                    out.modify.append(command)
    return out


def desired_event(command: CreateEventCommand, current: DrEvent, now: datetime) -> DrEvent:
    """``current`` with the program's fields of ``command`` (not yet renumbered)."""
    built = build_event(command, current.event_id, now)
    return current.model_copy(update={name: getattr(built, name) for name in PROGRAM_FIELDS})


def follow_program(command: CreateEventCommand) -> Callable[[DrEvent, datetime], DrEvent | None]:
    """The change that makes an event what its program now says; None when it already is, CONFLICT
    when it has started meanwhile (an active event is left alone)."""

    def change(current: DrEvent, now: datetime) -> DrEvent | None:
        ensure_modifiable(current)
        if current.status not in CHANGEABLE or current.start_at <= now:
            raise CommandRejected("conflict", f"event {current.event_id} has started; left as it is", "event_id")
        desired = desired_event(command, current, now)
        if _fields(desired) == _fields(current):
            return None
        changed = desired.model_copy(update={"modification_number": current.modification_number + 1,
                                             "modified_at": now})
        changed.status = clock_status(changed, now)
        return changed

    return change


def cancel_unless_started(current: DrEvent, now: datetime) -> DrEvent | None:
    if current.status == EventStatus.CANCELLED:
        return None
    if current.status not in CHANGEABLE or current.start_at <= now:
        raise CommandRejected("conflict", f"event {current.event_id} has started; left as it is", "event_id")
    return current.model_copy(update={"status": EventStatus.CANCELLED,
                                      "modification_number": current.modification_number + 1,
                                      "modified_at": now, "cancel_reason": PROGRAM_CANCEL})


def _decode_program(raw: bytes) -> ProgramRecord | None:
    try:
        return ProgramRecord.model_validate_json(raw)
    except (ValidationError, ValueError) as e:
        log.error("unreadable program record: %s", e)
        return None


class ProgramPlanner:
    """Runs :func:`plan` on every program change and every ``period`` seconds, and carries it out
    through the command handlers (so facts and races are handled as for any command)."""

    def __init__(self, programs: KeyValue, handlers, events: KvMirror, horizon: timedelta,
                 period: float = 60.0, clock: Callable[[], datetime] = utcnow):
        self._handlers = handlers
        self._events = events  # the timer's mirror of the events bucket (EventRecord values)
        self._horizon = horizon
        self._period = period
        self._clock = clock
        self._wake = asyncio.Event()
        self.programs: KvMirror[ProgramRecord] = KvMirror(
            programs, PROGRAM_PREFIX, _decode_program, on_change=lambda *_: self._wake.set(),
            name=f"{programs._name} programs")
        self.passes = 0
        self._loaded = False
        # Occurrence event id -> (what was refused, the blocking event's id and modification number):
        # occurrences rule 18 refused, not tried again while that stays so.
        self._blocked: dict[str, tuple[str, str, int]] = {}

    async def load(self) -> None:
        """Load the programs mirror (``run`` does it when it has not been done)."""
        if not self._loaded:
            await self.programs.start()
            self._loaded = True

    async def run(self, stop: asyncio.Event) -> None:
        await self.load()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self.plan_once()
                except Exception:
                    log.exception("program planning failed; retrying")
                self.passes += 1
                waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
                try:
                    await asyncio.wait(waiters, timeout=self._period, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
        finally:
            await self.programs.stop()

    async def plan_once(self) -> Plan:
        now = self._clock()
        todo = plan(dict(self.programs.items()), [r.event for _, r in self._events.items()], now, self._horizon,
                    margin=timedelta(seconds=2 * self._period))
        wanted = {c.event_id for c in todo.create + todo.modify}
        for event_id in [e for e in self._blocked if e not in wanted]:
            del self._blocked[event_id]
        for command in todo.create:
            if not self._still_blocked("create", command):
                await self._try(command.event_id, "create", lambda c=command: self._handlers.create_event(c), command)
        for command in todo.modify:
            if not self._still_blocked("modify", command):
                await self._try(command.event_id, "modify",
                                lambda c=command: self._handlers.change_event(c.event_id, Transition.MODIFIED,
                                                                              follow_program(c)), command)
        for event_id in todo.cancel:
            await self._try(event_id, "cancel",
                            lambda e=event_id: self._handlers.change_event(e, Transition.CANCELLED,
                                                                           cancel_unless_started))
        return todo

    @staticmethod
    def _refused(what: str, command: CreateEventCommand) -> str:
        return what + command.model_dump_json(exclude={"id", "occurred_at"})

    def _still_blocked(self, what: str, command: CreateEventCommand) -> bool:
        """Whether rule 18 refused this very change and the event that blocked it is as it was."""
        blocked = self._blocked.get(command.event_id)
        if blocked is None:
            return False
        refused, other_id, modification = blocked
        other = self._events.get(other_id)
        if (refused == self._refused(what, command) and other is not None
                and other.event.modification_number == modification and other.event.status not in TERMINAL):
            return True
        del self._blocked[command.event_id]
        return False

    async def _try(self, event_id: str, what: str, action, command: CreateEventCommand | None = None) -> None:
        try:
            await action()
        except Overlap as e:
            log.warning("program event %s: %s skipped: it would overlap event %s in market context %s, whose "
                        "program refuses overlapping events (rule 18, A_E3_0530); not tried again until that "
                        "event changes", event_id, what, e.other.event_id, e.market_context)
            if command is not None:
                self._blocked[event_id] = (self._refused(what, command), e.other.event_id,
                                           e.other.modification_number)
        except CommandRejected as e:
            # Another replica (or an earlier run) did it, or the event started meanwhile.
            log.debug("program event %s: %s not needed: %s", event_id, what, e.message)
        except Exception:
            log.exception("program event %s: could not %s; the next pass retries", event_id, what)
        else:
            log.info("program event %s: %s", event_id, what)
