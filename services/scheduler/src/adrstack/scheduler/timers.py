"""The timer loop: fire far/near/active/completed when the clock reaches them.

Nothing is kept that a restart would lose: the loop reads the events bucket through the shared
events mirror and recomputes every due transition from it. For each due transition it publishes the
fact first (deterministic Nats-Msg-Id) and then CAS-updates the stored status, so with several
replicas exactly one CAS wins and a second publish of the same transition is dropped by the
stream's duplicate window.
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
from adrstack.shared.events_mirror import EventsMirror, decode_event, event_bytes
from adrstack.shared.jetstream import publish
from adrstack.shared.messages import DrEvent, Transition, utcnow
from adrstack.shared.subjects import Subjects

from .facts import transition_fact

log = logging.getLogger(__name__)


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
        max_sleep: float = 1.0,
        resync_seconds: float = 30.0,
        publish_timeout: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._js = js
        self._kv = events
        self._subjects = subjects
        self._max_sleep = max_sleep
        self._resync_seconds = resync_seconds
        self._publish_timeout = publish_timeout
        self._clock = clock
        self._wake = asyncio.Event()
        self.events = EventsMirror(events, on_change=lambda *_: self._wake.set())
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        await self.events.start()
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
                    last_sync = time.monotonic()
                self._wake.clear()
                now = self._clock()
                await self.fire_due(now)
                await self._sleep(stop, seconds_until_next([e for _, e in self.events.items()], now, self._max_sleep))
        finally:
            await self.events.stop()

    async def fire_due(self, now: datetime) -> None:
        for _, event in list(self.events.items()):
            if due_transition(event, now) is None:
                continue
            try:
                await self.advance(event.event_id)
            except Exception:
                # NATS unavailable for now: the next pass (at most max_sleep away) tries again.
                log.exception("could not advance event %s", event.event_id)

    async def advance(self, event_id: str) -> Transition | None:
        """Fire the due transition of one event; None when there was none or another replica won."""
        key = kv_keys.event_key(event_id)
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        event = decode_event(entry.value)
        now = self._clock()
        transition = due_transition(event, now)
        if transition is None:
            self.events.noted(event_id, event, entry.revision)
            return None
        reached = event.model_copy(update={"status": lifecycle.status_at(event, now)})
        fact = transition_fact(reached, transition, now)
        await publish(self._js, self._subjects.event(event_id, transition.value), fact, self._publish_timeout)
        try:
            revision = await self._kv.update(key, event_bytes(reached), last=entry.revision)
        except KeyWrongLastSequenceError:
            # Another replica fired it, or a command changed the event: the watch brings the new state.
            log.debug("event %s: lost the %s CAS race", event_id, transition.value)
            return None
        self.events.noted(event_id, reached, revision)
        log.info("event %s: %s", event_id, transition.value)
        return transition

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
