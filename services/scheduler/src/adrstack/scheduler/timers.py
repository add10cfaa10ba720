"""The timer loop: fire far/near/active/completed when the clock reaches them.

Nothing is kept that a restart would lose: the loop mirrors the events bucket and recomputes every
due transition from it. For each due transition it CAS-updates the stored status first, so with
several replicas exactly one commit wins, and only the winner publishes the fact (its id derived
from the commit's KV revision, see :mod:`.facts`). Facts a commit still owes (a crash between
commit and publish) are published when the loop starts and on every resync.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Callable

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from adrstack.shared import kv_keys, lifecycle
from adrstack.shared.events_mirror import EVENT_PREFIX
from adrstack.shared.kv_mirror import KvMirror
from adrstack.shared.messages import DrEvent, Transition, utcnow
from adrstack.shared.subjects import Subjects

from .facts import EventRecord, FactPublisher, decode_record, decode_record_or_none, record_bytes

log = logging.getLogger(__name__)

# A resync leaves a record that owes facts alone until it has owed them this long: the replica
# that committed it publishes them within milliseconds unless it died.
REPAIR_GRACE_SECONDS = 5.0


def due_transition(event: DrEvent, now: datetime) -> Transition | None:
    """The transition the clock asks for now, or None when the stored status is current."""
    if event.status in lifecycle.TERMINAL:
        return None
    reached = lifecycle.status_at(event, now)
    if reached == event.status:
        return None
    return Transition(reached.value)


def seconds_until_next(events: list[DrEvent], now: datetime, cap: float) -> float:
    """How long the loop may sleep before some event's status changes (at most ``cap``)."""
    wait = cap
    for event in events:
        boundary = lifecycle.next_boundary(event, now)
        if boundary is not None:
            wait = min(wait, (boundary - now).total_seconds())
    return max(wait, 0.0)


class TransitionTimer:
    def __init__(
        self,
        js: JetStreamContext,
        events: KeyValue,
        subjects: Subjects,
        stream: str = "OPENADR",
        max_sleep: float = 1.0,
        resync_seconds: float = 30.0,
        publish_timeout: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._kv = events
        self.facts = FactPublisher(js, events, subjects, stream, publish_timeout)
        self._max_sleep = max_sleep
        self._resync_seconds = resync_seconds
        self._clock = clock
        self._wake = asyncio.Event()
        self.events: KvMirror[EventRecord] = KvMirror(
            events, EVENT_PREFIX, decode_record_or_none, on_change=lambda *_: self._wake.set(),
            name=f"{events._name} events",
        )
        self.ready = asyncio.Event()
        self._owing_since: dict[tuple[str, int], float] = {}  # (event, revision) -> first seen owing

    async def run(self, stop: asyncio.Event) -> None:
        await self.events.start()
        await self.repair_pending()
        self.ready.set()
        last_sync = time.monotonic()
        try:
            while not stop.is_set():
                if time.monotonic() - last_sync >= self._resync_seconds:
                    # Belt and braces: the watch resumes by itself after a reconnect, and a full
                    # re-read of this small bucket now and then costs little.
                    try:
                        await self.events.rewatch()
                    except Exception:
                        log.exception("could not re-read the events bucket; retrying")
                    await self.repair_pending(grace=REPAIR_GRACE_SECONDS)
                    last_sync = time.monotonic()
                self._wake.clear()
                now = self._clock()
                await self.fire_due(now)
                await self._sleep(stop, seconds_until_next([r.event for _, r in self.events.items()], now, self._max_sleep))
        finally:
            await self.events.stop()

    async def repair_pending(self, grace: float = 0.0) -> int:
        """Publish the facts that committed states still owe (after a crash between commit and
        publish); returns how many records needed it. ``grace``: leave a record alone until it has
        owed them that long (seconds, as seen here), so a live replica publishes its own facts."""
        repaired = 0
        now = time.monotonic()
        owing: dict[tuple[str, int], float] = {}
        for event_id, record in list(self.events.items()):
            if not record.pending:
                continue
            _, revision = self.events.entry(event_id)
            since = owing[(event_id, revision)] = self._owing_since.get((event_id, revision), now)
            if now - since < grace:
                continue
            try:
                settled = await self.facts.repair(record.event, revision, record.pending)
            except Exception:
                log.exception("could not publish the pending facts of event %s; retrying later", event_id)
                continue
            repaired += 1
            if settled is not None:
                self.events.noted(event_id, EventRecord(record.event), settled)
        self._owing_since = owing
        return repaired

    async def fire_due(self, now: datetime) -> None:
        for _, record in list(self.events.items()):
            if due_transition(record.event, now) is None:
                continue
            try:
                await self.advance(record.event.event_id)
            except Exception:
                # NATS unavailable for now: the next pass (at most max_sleep away) tries again.
                log.exception("could not advance event %s", record.event.event_id)

    async def advance(self, event_id: str) -> Transition | None:
        """Fire the due transition of one event; None when there was none or another replica won."""
        key = kv_keys.event_key(event_id)
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        record = decode_record(entry.value)
        event = record.event
        base = entry.revision
        if record.pending:
            if due_transition(event, self._clock()) is None:
                # Another replica has just fired this transition and is publishing its fact (our
                # mirror lagged). Publishing it here too would show core NATS subscribers a copy;
                # a replica that died before publishing is repaired at the next resync or start.
                self.events.noted(event_id, record, base)
                return None
            # The facts of the state we would build on go first, so the stream keeps commit order.
            settled = await self.facts.repair(event, base, record.pending)
            if settled is None:
                return None  # the event moved on meanwhile: the watch brings the new state
            base = settled
        now = self._clock()
        transition = due_transition(event, now)
        if transition is None:
            self.events.noted(event_id, EventRecord(event), base)
            return None
        reached = event.model_copy(update={"status": lifecycle.status_at(event, now)})
        try:
            revision = await self._kv.update(key, record_bytes(reached, [transition]), last=base)
        except KeyWrongLastSequenceError:
            # Another replica fired it, or a command changed the event: the watch brings the new state.
            log.debug("event %s: lost the %s CAS race", event_id, transition.value)
            return None
        committed_at = time.monotonic()
        self.events.noted(event_id, EventRecord(reached, (transition,)), revision)
        try:
            settled = await self.facts.publish_committed(reached, revision, [transition], now, committed_at)
        except Exception:
            log.exception("event %s: could not publish %s yet; left pending", event_id, transition.value)
            return transition
        if settled is not None:
            self.events.noted(event_id, EventRecord(reached), settled)
        log.info("event %s: %s", event_id, transition.value)
        return transition

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
