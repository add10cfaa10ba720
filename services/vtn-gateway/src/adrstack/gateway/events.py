"""Which events each VEN gets, and each event's oadrEvent XML, rendered once per state.

Fed by the shared events mirror. An event's XML depends on its modification, its status and
(while active) its running interval, never on the VEN but for the venID in its target, so it
is rendered once per such state and reused for every VEN it targets. An event that cannot
be written as a valid oadrEvent (whatever the API let through) is left out of every
delivery and logged once: every oadrDistributeEvent carries all of a VEN's events, so one
unreadable event would otherwise hide all the others from it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from lxml import etree

from adrstack.shared.events_mirror import EventsMirror
from adrstack.shared.messages import DrEvent, EventStatus

from .codec import render
from .codec.schema import schema

log = logging.getLogger(__name__)

SIMPLE_LEVELS = (0, 1, 2, 3)


class UndeliverableEvent(ValueError):
    pass


def current_interval(event: DrEvent, status: EventStatus, now: datetime) -> int | None:
    """The index of the running interval while the event is active, else None."""
    if status != EventStatus.ACTIVE:
        return None
    at = event.start_at
    for index, interval in enumerate(event.intervals):
        at += interval.duration
        if now < at:
            return index
    return len(event.intervals) - 1


def event_parts(event: DrEvent, status: EventStatus, running: int | None) -> render.EventParts:
    # Rule 14: currentValue is 0 unless the event is active, then the running interval's payload.
    current = 0.0 if running is None else float(event.intervals[running].payload)
    return render.EventParts(
        event_id=event.event_id,
        modification_number=event.modification_number,
        created_at=event.created_at,
        status=status.value,
        start_at=event.start_at,
        duration=event.duration,
        signals=[render.EventSignal(
            signal_name=event.signal_name, signal_type=event.signal_type, signal_id=event.signal_id,
            intervals=[(i.duration, float(i.payload)) for i in event.intervals], current_value=current)],
        market_context=event.market_context,
        priority=event.priority,
        response_required=event.response_required,
        modified_at=event.modified_at if event.modification_number > 0 else None,
        test_event=event.test_event,
        vtn_comment=event.vtn_comment,
        start_after=event.randomization,
        notification=event.notification,
        ramp_up=event.ramp_up,
        recovery=event.recovery,
        group_ids=tuple(event.targets.group_ids),
        resource_ids=tuple(event.targets.resource_ids),
        party_ids=tuple(event.targets.party_ids),
    )


def render_checked(event: DrEvent, status: EventStatus, running: int | None) -> render.EventXml:
    if event.signal_name == "SIMPLE":
        bad = [i.payload for i in event.intervals if i.payload not in SIMPLE_LEVELS]
        if bad:
            raise UndeliverableEvent(f"SIMPLE payloads must be one of 0..3, not {bad}")
    if any(i.duration % timedelta(seconds=1) for i in event.intervals):
        raise UndeliverableEvent("interval durations must be whole seconds")
    try:
        xml = render.event(event_parts(event, status, running))
        document = render.distribute_event("check", [xml.for_ven("check")], request_id="check")
        tree = etree.fromstring(document)
    except (ValueError, etree.XMLSyntaxError) as e:  # e.g. a control character in vtnComment
        raise UndeliverableEvent(f"does not render as XML: {e}") from e
    if not schema().validate(tree):
        raise UndeliverableEvent(f"not a valid oadrEvent: {schema().error_log.last_error}")
    return xml


def delivery_order(items: list[tuple[DrEvent, EventStatus]]) -> list[tuple[DrEvent, EventStatus]]:
    """Rule 15: active events first (by priority, 1 highest, 0 none), then the rest by start."""

    def key(item: tuple[DrEvent, EventStatus]):
        event, status = item
        priority = event.priority if event.priority > 0 else float("inf")
        return (status != EventStatus.ACTIVE, priority if status == EventStatus.ACTIVE else 0,
                event.start_at, event.event_id)

    return sorted(items, key=key)


class EventBook:
    def __init__(self, kv):
        self.mirror = EventsMirror(kv, on_change=self._changed)
        self._by_ven: dict[str, set[str]] = {}
        # event_id -> ((modification, status, running interval), XML or the reason it has none)
        self._xml: dict[str, tuple[tuple, render.EventXml | UndeliverableEvent]] = {}

    async def start(self) -> None:
        await self.mirror.start()

    async def stop(self) -> None:
        await self.mirror.stop()

    def __len__(self) -> int:
        return len(self.mirror)

    def get(self, event_id: str) -> DrEvent | None:
        return self.mirror.get(event_id)

    def for_ven(self, ven_id: str) -> list[DrEvent]:
        ids = self._by_ven.get(ven_id)
        if not ids:
            return []
        get = self.mirror.get
        return [e for e in map(get, ids) if e is not None]

    def targets(self, event: DrEvent, ven_id: str) -> bool:
        return event.event_id in self._by_ven.get(ven_id, ())

    def xml(self, event: DrEvent, status: EventStatus, now: datetime) -> render.EventXml | None:
        running = current_interval(event, status, now)
        key = (event.modification_number, status, running)
        cached = self._xml.get(event.event_id)
        if cached is None or cached[0] != key:
            try:
                result: render.EventXml | UndeliverableEvent = render_checked(event, status, running)
            except UndeliverableEvent as e:
                log.error("not delivering event %s (modification %s): %s", event.event_id,
                          event.modification_number, e)
                result = e
            cached = (key, result)
            self._xml[event.event_id] = cached
        return None if isinstance(cached[1], UndeliverableEvent) else cached[1]

    def _changed(self, key: str | None, old: DrEvent | None, new: DrEvent | None) -> None:
        if key is None:  # the whole mirror was reloaded
            self._by_ven = {}
            self._xml = {}
            for _, event in self.mirror.items():
                self._index(event)
            return
        if old is not None:
            for ven in old.targets.ven_ids:
                ids = self._by_ven.get(ven)
                if ids is not None:
                    ids.discard(key)
                    if not ids:
                        del self._by_ven[ven]
        self._xml.pop(key, None)
        if new is not None:
            self._index(new)

    def _index(self, event: DrEvent) -> None:
        for ven in event.targets.ven_ids:
            self._by_ven.setdefault(ven, set()).add(event.event_id)
