"""The facts the scheduler publishes: only for a state committed to the events bucket, once.

Every change is committed first: the stored record carries the transitions its new state owes the
stream (``pending_facts``). Then the facts are published, each with an id derived from
(event_id, KV revision of that commit, transition), and the marker is cleared with a
compare-and-set. So:

- a fact never describes a state that lost a CAS race (it is published after the commit);
- a re-publish of the same committed state (another replica, a retry, the repair after a crash)
  carries the same Nats-Msg-Id and is dropped by JetStream inside its duplicate window; outside
  it, :meth:`FactPublisher.repair` looks at the stream's last message on the subject first;
- whoever wants to write the next state of an event whose record still has pending facts
  publishes those first, so the stream holds an event's facts in commit order;
- a crash between commit and publish leaves the marker, and start-up (and the timer's periodic
  resync) publishes what it names.

Records without the marker (everything the scheduler wrote before it existed) read as settled.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from adrstack.shared import kv_keys
from adrstack.shared.events_mirror import decode_event
from adrstack.shared.jetstream import DUPLICATE_WINDOW, publish
from adrstack.shared.messages import DrEvent, EventTransition, Transition, derived_id, utcnow
from adrstack.shared.subjects import Subjects

log = logging.getLogger(__name__)

PENDING_FIELD = "pending_facts"

# A publish later than this after its commit may fall outside the stream's duplicate window
# (a process stalled in between); it is then checked against the stream and the bucket first.
UNCHECKED_PUBLISH_SECONDS = DUPLICATE_WINDOW.total_seconds() / 2


@dataclass(frozen=True)
class EventRecord:
    """One value of the events bucket: the event, and the facts its commit has not published yet."""

    event: DrEvent
    pending: tuple[Transition, ...] = ()


def record_bytes(event: DrEvent, pending: Iterable[Transition] = ()) -> bytes:
    """A DrEvent's JSON, plus ``pending_facts`` when there are any (readers of DrEvent ignore it)."""
    body = event.model_dump(mode="json")
    pending = [t.value for t in pending]
    if pending:
        body[PENDING_FIELD] = pending
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def decode_record(raw: bytes) -> EventRecord:
    """Raises pydantic.ValidationError (or ValueError) for a value that is not an event record."""
    event = decode_event(raw)
    pending = json.loads(raw).get(PENDING_FIELD) or ()
    return EventRecord(event, tuple(Transition(t) for t in pending))


def decode_record_or_none(raw: bytes) -> EventRecord | None:
    try:
        return decode_record(raw)
    except (ValidationError, ValueError) as e:
        log.error("unreadable event record: %s", e)
        return None


def transition_id(event_id: str, revision: int, transition: Transition):
    """The fact's id (and Nats-Msg-Id): one per committed state and transition."""
    return derived_id("event", event_id, "revision", revision, transition.value)


def transition_fact(
    event: DrEvent, transition: Transition, revision: int, now: datetime | None = None
) -> EventTransition:
    return EventTransition(
        id=transition_id(event.event_id, revision, transition),
        occurred_at=now or utcnow(),
        event_id=event.event_id,
        transition=transition,
        event=event,
    )


class FactPublisher:
    """Publishes the facts of committed states and clears their marker."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, subjects: Subjects, stream: str, timeout: float = 5.0):
        self._js = js
        self._kv = kv
        self._subjects = subjects
        self._stream = stream
        self._timeout = timeout

    async def publish_committed(
        self,
        event: DrEvent,
        revision: int,
        transitions: Iterable[Transition],
        now: datetime | None = None,
        committed_at: float | None = None,
        settle: bool = True,
    ) -> int | None:
        """Right after our own commit at ``revision``: publish, then (``settle``) clear the marker.

        Raises if a fact could not be published (the marker stays; repair will publish it).
        Returns the revision of the settled record, or None when it was not ours to settle.
        """
        if committed_at is not None and time.monotonic() - committed_at > UNCHECKED_PUBLISH_SECONDS:
            return await self.repair_current(event.event_id)
        for transition in transitions:
            await self._publish(transition_fact(event, transition, revision, now))
        return await self.settle(event, revision) if settle else None

    async def repair(self, event: DrEvent, revision: int, pending: Iterable[Transition]) -> int | None:
        """Publish the pending facts of the record at ``revision`` unless the stream has them already."""
        for transition in pending:
            fact = transition_fact(event, transition, revision)
            if await self._in_stream(fact):
                continue
            log.warning("event %s: publishing the %s fact of revision %d after the fact",
                        event.event_id, transition.value, revision)
            await self._publish(fact)
        return await self.settle(event, revision)

    async def repair_current(self, event_id: str) -> int | None:
        """Repair whatever the bucket holds for the event now (a no-op when it is settled)."""
        try:
            entry = await self._kv.get(kv_keys.event_key(event_id))
        except KeyNotFoundError:
            return None
        record = decode_record(entry.value)
        if not record.pending:
            return entry.revision
        return await self.repair(record.event, entry.revision, record.pending)

    async def settle(self, event: DrEvent, revision: int) -> int | None:
        """Clear the marker of the record at ``revision``; None if the record moved on meanwhile
        (whoever moved it on published our facts first)."""
        try:
            return await self._kv.update(kv_keys.event_key(event.event_id), record_bytes(event), last=revision)
        except KeyWrongLastSequenceError:
            return None

    async def _in_stream(self, fact: EventTransition) -> bool:
        subject = self._subjects.event(fact.event_id, fact.transition.value)
        try:
            last = await self._js.get_last_msg(self._stream, subject)
        except NotFoundError:
            return False
        try:
            return json.loads(last.data).get("id") == str(fact.id)
        except (ValueError, AttributeError):
            return False

    async def _publish(self, fact: EventTransition) -> None:
        await publish(self._js, self._subjects.event(fact.event_id, fact.transition.value), fact, self._timeout)
