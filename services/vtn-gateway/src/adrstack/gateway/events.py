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
from collections import Counter
from datetime import datetime, timedelta

from lxml import etree
from pydantic import ValidationError

from adrstack.shared import kv_keys
from adrstack.shared.events_mirror import EventsMirror
from adrstack.shared.kv_mirror import KvMirror
from adrstack.shared.lifecycle import TERMINAL
from adrstack.shared.messages import DrEvent, EventStatus, GroupRecord
from adrstack.shared.programs import ProgramRecord
from adrstack.shared.targeting import resolve, resource_ids

from .codec import render
from .codec.schema import schema

log = logging.getLogger(__name__)

SIMPLE_LEVELS = (0, 1, 2, 3)


class UndeliverableEvent(ValueError):
    pass


def _running_index(intervals, start: datetime, now: datetime) -> int:
    at = start
    for index, interval in enumerate(intervals):
        at += interval.duration
        if now < at:
            return index
    return len(intervals) - 1


def current_interval(event: DrEvent, status: EventStatus, now: datetime) -> int | None:
    """The index of the event's own signal's running interval while it is active, else None."""
    return _running_index(event.intervals, event.start_at, now) if status == EventStatus.ACTIVE else None


Running = tuple[int | None, ...]


def running_intervals(event: DrEvent, status: EventStatus, now: datetime) -> Running:
    """Per signal (the event's own first), the running interval's index while active, else None."""
    if status != EventStatus.ACTIVE:
        return (None,) * (1 + len(event.extra_signals))
    return tuple(_running_index(s.intervals, event.start_at, now) for s in event.signals())


def _per_signal(event: DrEvent, running: Running | int | None) -> Running:
    if isinstance(running, tuple):
        return running
    return (running,) + (None,) * len(event.extra_signals)


def event_parts(event: DrEvent, status: EventStatus, running: Running | int | None) -> render.EventParts:
    running = _per_signal(event, running)
    signals = []
    for signal, index in zip(event.signals(), running):
        # Rule 14: currentValue is 0 unless the event is active, then the running interval's payload.
        current = 0.0 if index is None else float(signal.intervals[index].payload)
        signals.append(render.EventSignal(
            signal_name=signal.signal_name, signal_type=signal.signal_type, signal_id=signal.signal_id,
            intervals=[(i.duration, float(i.payload)) for i in signal.intervals], current_value=current,
            units=signal.units))
    return render.EventParts(
        event_id=event.event_id,
        modification_number=event.modification_number,
        created_at=event.created_at,
        status=status.value,
        start_at=event.start_at,
        duration=event.duration,
        signals=signals,
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
        baseline=event.baseline,
    )


def render_checked(event: DrEvent, status: EventStatus, running: Running | int | None) -> render.EventXml:
    for signal in event.signals():
        if signal.signal_name == "SIMPLE":
            bad = [i.payload for i in signal.intervals if i.payload not in SIMPLE_LEVELS]
            if bad:
                raise UndeliverableEvent(f"SIMPLE payloads must be one of 0..3, not {bad}")
        if any(i.duration % timedelta(seconds=1) for i in signal.intervals):
            raise UndeliverableEvent("interval durations must be whole seconds")
    if event.baseline is not None and any(i.duration % timedelta(seconds=1) for i in event.baseline.intervals):
        raise UndeliverableEvent("baseline interval durations must be whole seconds")
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
    """Rule 15: active events first (by priority, 1 highest, 0 none; then by start), then the
    pending ones (far, near) by start, and the ones over (completed, and cancelled) last, by start."""

    def key(item: tuple[DrEvent, EventStatus]):
        event, status = item
        if status == EventStatus.ACTIVE:
            return (0, event.priority if event.priority > 0 else float("inf"), event.start_at, event.event_id)
        return (2 if status in TERMINAL else 1, 0, event.start_at, event.event_id)

    return sorted(items, key=key)


class _GroupMembers:
    """group_id -> member VEN ids, read from the groups mirror (for targeting.resolve)."""

    __slots__ = ("mirror",)

    def __init__(self, mirror: KvMirror[GroupRecord] | None):
        self.mirror = mirror

    def get(self, group_id: str, default=()):
        record = None if self.mirror is None else self.mirror.get(group_id)
        return default if record is None else record.ven_ids


class _ProgramsByMarketContext:
    """market context -> the programs with it, read from the programs mirror (for targeting.resolve)."""

    __slots__ = ("mirror",)

    def __init__(self, mirror: KvMirror[ProgramRecord] | None):
        self.mirror = mirror

    def get(self, market_context: str, default=()):
        if self.mirror is None:
            return default
        return [p for _, p in self.mirror.items() if p.market_context == market_context] or default


def _decode_program(raw: bytes) -> ProgramRecord | None:
    try:
        return ProgramRecord.model_validate_json(raw)
    except (ValidationError, ValueError):
        return None


def _decode_group(raw: bytes) -> GroupRecord | None:
    try:
        return GroupRecord.model_validate_json(raw)
    except ValidationError:
        return None


def _resources_of(record) -> frozenset[str]:
    return frozenset() if record is None else resource_ids(record.reports)


class EventBook:
    """The events each VEN gets: the VEN -> events index is ``targeting.resolve`` of each event's
    targets against the current groups (the groups bucket, mirrored) and the resource ids of each
    VEN's registered reports (``follow_reports``: the VenStore's reports mirror feeds it). A change
    of a group or of a VEN's resources that some event targets marks the index dirty; the next read
    rebuilds it. An event's own change is applied at once."""

    def __init__(self, kv, groups_kv=None, programs_kv=None):
        self.mirror = EventsMirror(kv, on_change=self._changed)
        self.groups: KvMirror[GroupRecord] | None = None
        if groups_kv is not None:
            self.groups = KvMirror(groups_kv, kv_keys.GROUP_PREFIX, _decode_group, on_change=self._group_changed,
                                   name=f"{groups_kv._name} groups")
        self._members = _GroupMembers(self.groups)
        self.programs: KvMirror[ProgramRecord] | None = None
        if programs_kv is not None:
            self.programs = KvMirror(programs_kv, kv_keys.PROGRAM_PREFIX, _decode_program,
                                     on_change=self._program_changed, name=f"{programs_kv._name} programs")
        self._programs = _ProgramsByMarketContext(self.programs)
        # Events targeting a market context: a change of any program or group may move them.
        self._targeted_market_contexts = 0
        self._reports: KvMirror | None = None
        self._by_ven: dict[str, set[str]] = {}
        # resource id -> the VENs that registered a report with it
        self._vens_by_resource: dict[str, set[str]] = {}
        # How many events target each group / resource id: only their changes can move events.
        self._targeted_groups: Counter[str] = Counter()
        self._targeted_resources: Counter[str] = Counter()
        self._dirty = False
        # event_id -> ((modification, status, running interval), XML or the reason it has none)
        self._xml: dict[str, tuple[tuple, render.EventXml | UndeliverableEvent]] = {}

    def follow_reports(self, mirror: KvMirror) -> None:
        """Resolve resource ids from this mirror of the VENs' ReportRecords (call before it starts;
        its on_change must call :meth:`reports_changed`)."""
        self._reports = mirror

    async def start(self) -> None:
        if self.groups is not None:
            await self.groups.start()
        if self.programs is not None:
            await self.programs.start()
        await self.mirror.start()

    async def stop(self) -> None:
        await self.mirror.stop()
        if self.groups is not None:
            await self.groups.stop()
        if self.programs is not None:
            await self.programs.stop()

    def __len__(self) -> int:
        return len(self.mirror)

    def get(self, event_id: str) -> DrEvent | None:
        return self.mirror.get(event_id)

    def for_ven(self, ven_id: str) -> list[DrEvent]:
        if self._dirty:
            self._rebuild()
        ids = self._by_ven.get(ven_id)
        if not ids:
            return []
        get = self.mirror.get
        return [e for e in map(get, ids) if e is not None]

    def targets(self, event: DrEvent, ven_id: str) -> bool:
        if self._dirty:
            self._rebuild()
        return event.event_id in self._by_ven.get(ven_id, ())

    def xml(self, event: DrEvent, status: EventStatus, now: datetime) -> render.EventXml | None:
        running = running_intervals(event, status, now)
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
            self._xml = {}
            self._dirty = True
            return
        self._xml.pop(key, None)
        if old is not None:
            self._unindex(old)
        if new is not None:
            self._index(new)

    def _resolve(self, event: DrEvent) -> set[str]:
        return resolve(event.targets, self._members, self._vens_by_resource, self._programs)

    def _index(self, event: DrEvent) -> None:
        self._targeted_groups.update(event.targets.group_ids)
        self._targeted_market_contexts += bool(event.targets.market_contexts)
        self._targeted_resources.update(event.targets.resource_ids)
        if self._dirty:
            return  # the rebuild will place it
        for ven in self._resolve(event):
            self._by_ven.setdefault(ven, set()).add(event.event_id)

    def _unindex(self, event: DrEvent) -> None:
        self._targeted_groups.subtract(event.targets.group_ids)
        self._targeted_market_contexts -= bool(event.targets.market_contexts)
        self._targeted_resources.subtract(event.targets.resource_ids)
        if self._dirty:
            return
        # While the index is clean, resolving against the current groups and resources gives
        # exactly the VENs the event was indexed under (any change to those would have dirtied it).
        for ven in self._resolve(event):
            ids = self._by_ven.get(ven)
            if ids is not None:
                ids.discard(event.event_id)
                if not ids:
                    del self._by_ven[ven]

    def _rebuild(self) -> None:
        self._dirty = False
        self._targeted_groups = Counter()
        self._targeted_resources = Counter()
        self._targeted_market_contexts = 0
        by_ven: dict[str, set[str]] = {}
        for event_id, event in self.mirror.items():
            self._targeted_groups.update(event.targets.group_ids)
            self._targeted_market_contexts += bool(event.targets.market_contexts)
            self._targeted_resources.update(event.targets.resource_ids)
            for ven in self._resolve(event):
                by_ven.setdefault(ven, set()).add(event_id)
        self._by_ven = by_ven

    def _group_changed(self, key: str | None, old: GroupRecord | None, new: GroupRecord | None) -> None:
        if key is None or self._targeted_groups[key] > 0 or self._targeted_market_contexts > 0:
            self._dirty = True

    def _program_changed(self, key: str | None, old, new) -> None:
        if key is None or self._targeted_market_contexts > 0:
            self._dirty = True

    def reports_changed(self, key: str | None, old, new) -> None:
        """on_change of the reports mirror (ven_id -> ReportRecord): keep resource id -> VENs."""
        if key is None:
            by_resource: dict[str, set[str]] = {}
            for ven_id, record in (self._reports.items() if self._reports is not None else ()):
                for resource in _resources_of(record):
                    by_resource.setdefault(resource, set()).add(ven_id)
            self._vens_by_resource = by_resource
            self._dirty = True
            return
        before, after = _resources_of(old), _resources_of(new)
        if before == after:
            return  # e.g. a report request marked sent
        for resource in before - after:
            vens = self._vens_by_resource.get(resource)
            if vens is not None:
                vens.discard(key)
                if not vens:
                    del self._vens_by_resource[resource]
        for resource in after - before:
            self._vens_by_resource.setdefault(resource, set()).add(key)
        if any(self._targeted_resources[r] > 0 for r in before ^ after):
            self._dirty = True
