"""2.0b rule 18, certification case A_E3_0530: no overlapping events in the same market context
(overlaps only across market contexts), as an option of a program (``ProgramRecord.refuse_overlaps``).

An event belongs to its ``market_context`` and to every market context it targets
(``targets.market_contexts``). When a program with ``refuse_overlaps`` has market context M, an event
of M may not be created, or modified, so that its active window ``[start_at, completes_at)``
(lifecycle.completes_at: the end plus a possible randomization, the "randomized cancellation
window" of the rule) overlaps the window of another event of M that is not cancelled or completed.
Windows are half-open: an event may start exactly when the other ends. Events of market contexts
without such a program (ad-hoc events, ``/send_event``'s) may overlap as before.

The check reads the scheduler's mirrors (the timer's events, the planner's programs), never KV.

Races: within one scheduler replica, the check and the KV commit of a guarded event happen under one
lock and the commit is noted in the events mirror at once, so two commands (or a command and the
planner) cannot both pass. Across replicas it is best-effort: two replicas creating overlapping
events of M at the same moment each check against a mirror that has not yet seen the other's commit
(the window is the KV watch latency, milliseconds) and both may succeed. Closing that would need a
per-market-context write serialised through KV, which the scheduler does not have.

:func:`windows_overlap` and :func:`first_overlap` are pure; :class:`OverlapGuard` applies them.
"""

from __future__ import annotations

import asyncio
from typing import Iterable

from adrstack.shared import lifecycle
from adrstack.shared.kv_mirror import KvMirror
from adrstack.shared.messages import DrEvent, Transition
from adrstack.shared.programs import ProgramRecord

from .commands import CommandRejected
from .facts import EventRecord


class Overlap(CommandRejected):
    """A create or modify refused by rule 18: its event would overlap ``other`` in ``market_context``."""

    def __init__(self, event: DrEvent, other: DrEvent, market_context: str):
        super().__init__(
            "conflict",
            f"start_at: the event would overlap event {other.event_id} ({other.start_at.isoformat()} to "
            f"{_until(other)}) in market context {market_context}, whose program "
            "refuses overlapping events (OpenADR 2.0b rule 18, A_E3_0530)",
            "start_at",
        )
        self.event = event
        self.other = other
        self.market_context = market_context


def market_contexts(event: DrEvent) -> set[str]:
    """The market contexts an event belongs to: its own and those it targets."""
    return {event.market_context, *event.targets.market_contexts}


def _until(event: DrEvent) -> str:
    end = lifecycle.completes_at(event)
    return "its cancellation (open-ended)" if end is None else end.isoformat()


def _starts_before_end(a: DrEvent, b: DrEvent) -> bool:
    end = lifecycle.completes_at(b)
    return end is None or a.start_at < end  # an open-ended event (rule 47) has no end


def windows_overlap(a: DrEvent, b: DrEvent) -> bool:
    """Whether the active windows [start_at, completes_at) of ``a`` and ``b`` share an instant."""
    return _starts_before_end(a, b) and _starts_before_end(b, a)


def conflicts(event: DrEvent, others: Iterable[DrEvent], guarded: set[str]) -> dict[str, tuple[DrEvent, str]]:
    """event_id -> (other, market context) of every other event, not cancelled or completed, that
    shares a guarded market context with ``event`` and whose window overlaps it."""
    mine = market_contexts(event) & guarded
    found: dict[str, tuple[DrEvent, str]] = {}
    if not mine:
        return found
    for other in others:
        if other.event_id == event.event_id or other.status in lifecycle.TERMINAL:
            continue
        shared = mine & market_contexts(other)
        if shared and windows_overlap(event, other):
            found[other.event_id] = (other, min(shared))
    return found


def first_overlap(event: DrEvent, others: Iterable[DrEvent], guarded: set[str],
                  before: DrEvent | None = None) -> tuple[DrEvent, str] | None:
    """The first (by start, then id) other event ``event`` would overlap in a guarded market context,
    or None. ``before``: the event as it is now, for a modification — overlaps it already had are
    not held against the change (they predate the rule, e.g. the program turned it on later)."""
    others = list(others)
    found = conflicts(event, others, guarded)
    if before is not None:
        for event_id in conflicts(before, others, guarded):
            found.pop(event_id, None)
    if not found:
        return None
    return min(found.values(), key=lambda pair: (pair[0].start_at, pair[0].event_id))


class OverlapGuard:
    """Rule 18 over the scheduler's mirrors: the timer's events and the planner's programs."""

    def __init__(self, events: KvMirror[EventRecord], programs: KvMirror[ProgramRecord]):
        self.events = events
        self.programs = programs
        # Held from the check to the noted commit of an event in a guarded market context.
        self.lock = asyncio.Lock()

    def guarded(self) -> set[str]:
        return {p.market_context for _, p in self.programs.items() if p.refuse_overlaps}

    def applies(self, *events: DrEvent) -> bool:
        guarded = self.guarded()
        return any(market_contexts(e) & guarded for e in events if e is not None)

    def check(self, event: DrEvent, before: DrEvent | None = None) -> None:
        """Raise :class:`Overlap` when ``event`` (a new one, or ``before`` changed) breaks rule 18."""
        guarded = self.guarded()
        if not market_contexts(event) & guarded:
            return
        found = first_overlap(event, (r.event for _, r in self.events.items()), guarded, before)
        if found is not None:
            raise Overlap(event, *found)

    def committed(self, event: DrEvent, revision: int, pending: Iterable[Transition]) -> None:
        """Note a commit in the events mirror at once, so the next check sees it (the watch lags)."""
        self.events.noted(event.event_id, EventRecord(event, tuple(pending)), revision)
