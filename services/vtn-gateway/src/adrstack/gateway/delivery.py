"""Deciding, on each poll, whether a VEN must be sent oadrDistributeEvent (pure logic).

The record of what a VEN was last told lives in the vens KV bucket (``delivery.<ven_id>``),
so a restarted gateway or another replica makes the same decision.

The 2.0b rules kept here (see /work/shared/openadr-2.0b-vtn-rules.md):

- rule 50: every oadrDistributeEvent carries all of the VEN's far/near/active events, so any
  change to that set (an event added, modified, moved to another status, or gone: completed,
  cancelled, removed from the bucket, or no longer targeting the VEN) sends the whole set again,
  once; a VEN left with no events gets an empty oadrDistributeEvent (valid, E1_1010);
- a completed or cancelled event is shown once, to a VEN that was told about it while pending;
- rule 52: a cancelled event with responseRequired=always is shown again on every poll until
  the VEN acknowledges that modification with oadrCreatedEvent, its scheduled end passes, or it
  was shown ``max_sends`` times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Mapping

from adrstack.shared.lifecycle import TERMINAL, status_at
from adrstack.shared.messages import DrEvent, EventStatus

# Rule 52's retry limit: how many times an unacknowledged cancellation is shown to a VEN.
MAX_CANCEL_SENDS = 10

_NOTHING: Mapping = MappingProxyType({})


class DeliveryRecord:
    """What the VEN was last told, for events it still has to hear about:

    - ``pending``: event_id -> (modification_number, status) of every far/near/active event in
      the last distribution;
    - ``awaiting``: event_id -> (modification_number, times shown) of cancelled events with
      responseRequired=always the VEN has not acknowledged yet (rule 52).

    - ``pushing``: when a push recorded this and went to POST it; cleared once the VEN took it.
      A marker older than a push can last means the pushing gateway died mid-POST (kill -9), so
      the VEN may never have heard: the next push sends the whole set again.

    A slotted class with hand-written JSON: one per VEN that ever got an event. ``awaiting`` and
    ``pushing`` are written only when set, and a record without them (every record written
    before they existed) reads as awaiting nothing, no push in flight."""

    __slots__ = ("pending", "delivered_at", "awaiting", "pushing")

    def __init__(self, pending: dict[str, tuple[int, EventStatus]] | None = None,
                 delivered_at: datetime | None = None,
                 awaiting: dict[str, tuple[int, int]] | None = None,
                 pushing: datetime | None = None):
        self.pending = pending if pending is not None else {}
        self.delivered_at = delivered_at
        self.awaiting: Mapping[str, tuple[int, int]] = awaiting if awaiting else _NOTHING
        self.pushing = pushing

    def to_bytes(self) -> bytes:
        data: dict = {
            "pending": {event_id: [mod, status.value] for event_id, (mod, status) in self.pending.items()},
            "delivered_at": None if self.delivered_at is None else self.delivered_at.isoformat(),
        }
        if self.awaiting:
            data["awaiting"] = {event_id: [mod, sends] for event_id, (mod, sends) in self.awaiting.items()}
        if self.pushing is not None:
            data["pushing"] = self.pushing.isoformat()
        return json.dumps(data).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> "DeliveryRecord":
        data = json.loads(raw)
        pending = {str(k): (int(v[0]), EventStatus(v[1])) for k, v in (data.get("pending") or {}).items()}
        awaiting = {str(k): (int(v[0]), int(v[1])) for k, v in (data.get("awaiting") or {}).items()}
        at, pushing = data.get("delivered_at"), data.get("pushing")
        return cls(pending, datetime.fromisoformat(at) if at else None, awaiting,
                   datetime.fromisoformat(pushing) if pushing else None)

    def with_push(self, at: datetime | None) -> "DeliveryRecord":
        """This record, marked as being pushed since ``at`` (None: the push got through)."""
        return DeliveryRecord(self.pending, self.delivered_at, dict(self.awaiting), at)

    def acknowledged(self, event_id: str, modification_number: int) -> "DeliveryRecord | None":
        """The record once the VEN answered ``event_id`` at ``modification_number`` with
        oadrCreatedEvent, or None if that changes nothing."""
        waiting = self.awaiting.get(event_id)
        if waiting is None or modification_number < waiting[0]:
            return None
        awaiting = {k: v for k, v in self.awaiting.items() if k != event_id}
        return DeliveryRecord(self.pending, self.delivered_at, awaiting, self.pushing)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, DeliveryRecord) and self.pending == other.pending
                and self.delivered_at == other.delivered_at and dict(self.awaiting) == dict(other.awaiting)
                and self.pushing == other.pushing)

    def __repr__(self) -> str:
        return (f"DeliveryRecord(pending={self.pending!r}, delivered_at={self.delivered_at!r}, "
                f"awaiting={dict(self.awaiting)!r}, pushing={self.pushing!r})")


EMPTY_DELIVERY = DeliveryRecord()  # the record of a VEN never sent anything (never mutated)


@dataclass(slots=True)
class DeliveryPlan:
    items: list[tuple[DrEvent, EventStatus]]  # what the VEN should be shown now
    record: DeliveryRecord  # the record after showing it (the same object: nothing to write)
    changed: bool  # whether the VEN must be sent a distribution now
    # The record this plan was made against (None: the VEN had none); set by whoever stores the
    # plan, so that a push that did not get through can put it back.
    previous: DeliveryRecord | None = None


def awaits_acknowledgement(event: DrEvent) -> bool:
    """Rule 52: a cancellation the VEN must acknowledge, re-sent until it does."""
    return event.status == EventStatus.CANCELLED and event.response_required == "always"


def plan_delivery(events: list[DrEvent], record: DeliveryRecord, now: datetime,
                  max_sends: int = MAX_CANCEL_SENDS) -> DeliveryPlan:
    """``events`` are the events targeting the VEN (the gateway's mirror of the events bucket)."""
    items: list[tuple[DrEvent, EventStatus]] = []
    pending: dict[str, tuple[int, EventStatus]] = {}
    awaiting: dict[str, tuple[int, int]] | None = None
    was_pending = record.pending
    was_awaiting = record.awaiting
    shows_terminal = False
    for event in events:
        status = status_at(event, now)
        if status in TERMINAL:
            event_id = event.event_id
            mod = event.modification_number
            waiting = was_awaiting.get(event_id) if was_awaiting else None
            if event_id in was_pending:
                sends = 1  # the VEN held it pending: it hears of its end once...
            elif waiting is not None and waiting[0] == mod:
                # ...and an unacknowledged cancellation again, up to the limit (rule 52).
                if waiting[1] >= max_sends or (event.end_at is not None and now >= event.end_at):
                    continue
                sends = waiting[1] + 1
            elif waiting is not None:
                sends = 1  # a newer modification of a cancellation it was being sent
            else:
                continue  # a VEN that never saw the event is not bothered with its end
            shows_terminal = True
            if awaits_acknowledgement(event):
                if awaiting is None:
                    awaiting = {}
                awaiting[event_id] = (mod, sends)
        else:
            pending[event.event_id] = (event.modification_number, status)
        items.append((event, status))
    changed = shows_terminal or pending != was_pending
    # (Both empty, as on nearly every poll: no comparison.)
    rewaits = (awaiting is not None or bool(was_awaiting)) and (awaiting or _NOTHING) != was_awaiting
    if (changed or rewaits) and _lags(events, record):
        # This replica's mirror of the events bucket lags behind what the VEN was already sent
        # (by another replica): never show a VEN an older version of an event; wait for it.
        return DeliveryPlan(items=items, record=record, changed=False)
    if changed:
        return DeliveryPlan(items=items, record=DeliveryRecord(pending, now, awaiting), changed=True)
    if rewaits:
        # A cancellation no longer re-sent (limit, scheduled end, or gone from the bucket): the
        # VEN was told of it, so only the record changes.
        return DeliveryPlan(items=items, record=DeliveryRecord(pending, record.delivered_at, awaiting,
                                                               record.pushing), changed=False)
    return DeliveryPlan(items=items, record=record, changed=False)


def shown_only(after: DeliveryRecord, before: DeliveryRecord, shown: set[str]) -> DeliveryRecord:
    """The record after a distribution that showed the VEN only the events ``shown`` (an
    oadrRequestEvent with a replyLimit): of the others it learned nothing, so the record says of
    them what it said ``before``; the next poll then finds the VEN's view behind and sends the
    whole set (rule 50)."""
    pending = {k: v for k, v in after.pending.items() if k in shown}
    pending.update((k, v) for k, v in before.pending.items() if k not in shown)
    awaiting = {k: v for k, v in after.awaiting.items() if k in shown}
    awaiting.update((k, v) for k, v in before.awaiting.items() if k not in shown)
    return DeliveryRecord(pending, after.delivered_at, awaiting)


def _lags(events: list[DrEvent], record: DeliveryRecord) -> bool:
    """Whether any event is older than the version the record says the VEN was sent. Checked
    only when a plan would send or write, so an idle poll does not pay for it."""
    for event in events:
        for sent in (record.pending.get(event.event_id), record.awaiting.get(event.event_id)):
            if sent is not None and sent[0] > event.modification_number:
                return True
    return False
