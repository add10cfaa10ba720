"""Programs: the programs KV bucket (``program.<program_id>`` -> ProgramRecord), written here with
compare-and-set. The scheduler follows the bucket and turns each program's schedule into events
ahead of time (an edit changes the events not started yet); the gateway resolves an event's market
context through it. Every input error names its field as the GraphQL input spells it.

Every edit (create, update, enroll, unenroll, delete) takes an optional client ``idempotency_key``:
the same key with the same arguments again returns the first result and changes nothing (even if
the program changed since); with other arguments it is a CONFLICT on ``idempotencyKey``. Keys live
in the commands bucket under the ``program`` namespace (:mod:`adrstack.shared.idempotency`, the
implementation the scheduler's event commands use too), so they never meet event-command keys."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Awaitable, Callable, Iterable

from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

from adrstack.shared import kv_keys
from adrstack.shared.idempotency import IdempotencyKeys, KeyReused, StillInProgress, request_digest
from adrstack.shared.messages import MAX_TARGETED_VENS, utcnow
from adrstack.shared.programs import (
    MAX_EXCLUSIONS,
    MAX_RULES,
    PROGRAM_ID_MAX_LENGTH,
    WEEKDAYS,
    Occurrence,
    ProgramRecord,
    ProgramSchedule,
    ScheduleRule,
    occurrences,
    zone,
)

from .errors import ApiError, InvalidInput
from .groups import Groups
from .store import Store
from .validation import (
    RESPONSE_REQUIRED,
    SIMPLE_LEVELS,
    check_group_ids,
    check_group_name,
    check_optional_duration,
    check_idempotency_key,
    check_priority,
    check_signal,
    check_token,
    shown,
)

log = logging.getLogger(__name__)

CAS_ATTEMPTS = 5
LIST_TIMEOUT = 10.0
MARKET_CONTEXT_MAX_LENGTH = 256
_WRONG_LAST_SEQUENCE = (10071, 10164)
_LOCAL_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")
IDEMPOTENCY_NAMESPACE = "program"
_NOT_DONE = ("unavailable", "internal")  # refusals that did nothing: a retry with the key may still do it


@dataclass
class RuleSpec:
    days: list[str]
    start: str
    end: str


@dataclass
class ScheduleSpec:
    time_zone: str
    rules: list[Any]  # RuleSpec-like
    exclusion_dates: list[date] | None = None


def _no_program(program_id: str) -> ApiError:
    return ApiError("not_found", f"no program {shown(program_id)}", "programId")


def check_program_id(value: object, field: str = "programId") -> str:
    check_token(value, field, "program id")
    if len(value) > PROGRAM_ID_MAX_LENGTH:  # type: ignore[arg-type]
        raise InvalidInput(field, f"has {len(value)} characters; at most {PROGRAM_ID_MAX_LENGTH}")  # type: ignore
    return value  # type: ignore[return-value]


def check_market_context(value: object, field: str = "marketContext") -> str:
    if (not isinstance(value, str) or not value.strip() or len(value) > MARKET_CONTEXT_MAX_LENGTH
            or any(unicodedata.category(c).startswith("C") or c.isspace() for c in value) or ":" not in value):
        raise InvalidInput(field, f"{shown(value)} is not a market context URI (e.g. http://utility.example/peak, "
                                  f"at most {MARKET_CONTEXT_MAX_LENGTH} characters, no spaces)")
    return value


def _local_time(value: object, field: str) -> time:
    m = _LOCAL_TIME.match(value) if isinstance(value, str) else None
    try:
        if m is None:
            raise ValueError
        return time(int(m[1]), int(m[2]), int(m[3] or 0))
    except ValueError:
        raise InvalidInput(field, f"{shown(value)} is not a local time of day HH:MM or HH:MM:SS") from None


def check_schedule(spec: ScheduleSpec, field: str = "schedule") -> ProgramSchedule:
    try:
        zone(spec.time_zone)
    except ValueError as e:
        raise InvalidInput(f"{field}.timeZone", str(e)) from None
    rules_in = list(spec.rules or [])
    if len(rules_in) > MAX_RULES:
        raise InvalidInput(f"{field}.rules", f"at most {MAX_RULES} rules (one window per day of the week)")
    rules: list[ScheduleRule] = []
    owner: dict[str, int] = {}
    for i, rule in enumerate(rules_in):
        where = f"{field}.rules[{i}]"
        days = [d.lower() if isinstance(d, str) else d for d in (rule.days or [])]
        if not days:
            raise InvalidInput(f"{where}.days", f"at least one day ({', '.join(WEEKDAYS)})")
        for j, day in enumerate(days):
            if day not in WEEKDAYS:
                raise InvalidInput(f"{where}.days[{j}]", f"{shown(day)} is not one of {', '.join(WEEKDAYS)}")
            if day in owner and owner[day] != i:
                raise InvalidInput(f"{where}.days[{j}]", f"{day} is in rules[{owner[day]}] too: one window per day")
            owner[day] = i
        start = _local_time(rule.start, f"{where}.start")
        end = _local_time(rule.end, f"{where}.end")
        if end <= start:
            raise InvalidInput(f"{where}.end", f"{rule.end} is not after start {rule.start} (windows do not cross "
                                               "midnight)")
        rules.append(ScheduleRule(days=days, start=start, end=end))
    exclusions = list(dict.fromkeys(spec.exclusion_dates or []))
    if len(exclusions) > MAX_EXCLUSIONS:
        raise InvalidInput(f"{field}.exclusionDates", f"at most {MAX_EXCLUSIONS} dates")
    return ProgramSchedule(time_zone=spec.time_zone, rules=rules, exclusion_dates=sorted(exclusions))


def check_level(level: float, signal_name: str, signal_type: str, field: str = "level") -> float:
    """The program's signal (rule 7: its type fits its name) and level (a SIMPLE one is 0..3)."""
    check_signal(signal_name, signal_type, None)
    if signal_name == "SIMPLE" and level not in SIMPLE_LEVELS:
        raise InvalidInput(field, f"a SIMPLE signal's level is 0, 1, 2 or 3, not {level:g}")
    return level


class _Refusal(BaseModel):
    code: str
    detail: str
    field: str | None = None


class _Outcome(BaseModel):
    """What an edit with an idempotency key answered, as remembered in the commands bucket."""

    record: ProgramRecord | None = None
    error: _Refusal | None = None


def _plain(value: Any) -> Any:
    """GraphQL input objects (dataclasses) as plain data, for the request digest."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def idempotent(verb: str):
    """Give a program edit an optional ``idempotency_key`` keyword: carried out once per key."""

    def wrap(method):
        signature = inspect.signature(method)

        @functools.wraps(method)
        async def edit(self: "Programs", *args, idempotency_key: str | None = None, **kwargs):
            key = check_idempotency_key(idempotency_key)
            if key is None or self.keys is None:
                return await method(self, *args, **kwargs)
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            request = {name: _plain(v) for name, v in bound.arguments.items() if name != "self"}
            return await self._once(key, verb, request_digest(verb, request), lambda: method(self, *args, **kwargs))

        return edit

    return wrap


class Programs:
    def __init__(self, kv: KeyValue, store: Store, groups: Groups, clock: Callable[[], datetime] = utcnow,
                 keys: IdempotencyKeys | None = None):
        self.kv = kv
        self.store = store
        self.groups = groups
        self.clock = clock
        self.keys = keys  # the commands bucket's "program" namespace; None: keys are not kept

    async def _once(self, key: str, verb: str, digest: str,
                    run: Callable[[], Awaitable[ProgramRecord | None]]) -> ProgramRecord | None:
        async def outcome() -> _Outcome:
            try:
                return _Outcome(record=await run())
            except ApiError as e:
                return _Outcome(error=_Refusal(code=e.code, detail=e.detail, field=e.field))

        try:
            result = await self.keys.once(
                key, verb, digest, outcome, encode=lambda o: o.model_dump_json(),
                decode=_Outcome.model_validate_json, keep=lambda o: o.error is None or o.error.code not in _NOT_DONE)
        except KeyReused:
            raise ApiError("conflict", "this idempotencyKey was used for another request", "idempotencyKey") from None
        except StillInProgress:
            raise ApiError("unavailable", "a request with this idempotencyKey is still in progress; retry later "
                                          "for its result", "idempotencyKey") from None
        if result.error is not None:
            raise ApiError(result.error.code, result.error.detail, result.error.field)
        return result.record

    async def get(self, program_id: str) -> tuple[ProgramRecord | None, int | None]:
        try:
            entry = await self.kv.get(kv_keys.program_key(program_id))
        except (KeyNotFoundError, KeyDeletedError):
            return None, None
        if not entry.value:
            return None, None
        try:
            return ProgramRecord.model_validate_json(entry.value), entry.revision
        except ValidationError as e:
            log.error("unreadable program record %s: %s", program_id, e)
            return None, entry.revision

    async def records(self, limit: int) -> list[ProgramRecord]:
        watcher = await self.kv.watch(kv_keys.PROGRAM_RECORDS, ignore_deletes=True)
        records = []
        try:
            while (entry := await watcher.updates(timeout=LIST_TIMEOUT)) is not None:
                try:
                    records.append(ProgramRecord.model_validate_json(entry.value))
                except ValidationError as e:
                    log.error("unreadable program record %s: %s", entry.key, e)
        finally:
            await watcher.stop()
        records.sort(key=lambda r: r.program_id)
        return records[:limit]

    def upcoming(self, record: ProgramRecord, limit: int) -> list[Occurrence]:
        """The next windows of the schedule (ending after now), computed as the scheduler does."""
        now = self.clock()
        out: list[Occurrence] = []
        since, step = now - timedelta(days=1), timedelta(days=31)
        while len(out) < limit and since < now + timedelta(days=3 * 366):
            out += [o for o in occurrences(record.schedule, since, since + step) if o.end > now]
            since += step
        return out[:limit]

    @idempotent("create")
    async def create(self, *, program_id: str, market_context: str, schedule: ScheduleSpec, name: str | None = None,
                     ven_ids: Iterable[str] | None = None, group_ids: Iterable[str] | None = None,
                     signal_name: str = "SIMPLE", signal_type: str = "level", level: float = 1.0,
                     priority: int | None = None, response_required: str | None = None,
                     notification: str | None = None, refuse_overlaps: bool | None = None) -> ProgramRecord:
        check_program_id(program_id)
        check_group_name(name)
        fields: dict[str, Any] = {
            "program_id": program_id, "name": name, "market_context": check_market_context(market_context),
            "schedule": check_schedule(schedule), "signal_name": signal_name, "signal_type": signal_type,
            "level": check_level(level, signal_name, signal_type), "priority": check_priority(priority) or 0,
            "ven_ids": await self._known_vens(ven_ids or []), "group_ids": await self._known_groups(group_ids or []),
        }
        if response_required is not None:
            fields["response_required"] = self._response_required(response_required)
        if notification is not None:
            fields["notification"] = check_optional_duration(notification, "notification")
        if refuse_overlaps is not None:
            fields["refuse_overlaps"] = refuse_overlaps
        record = ProgramRecord(**fields, updated_at=utcnow())
        try:
            await self.kv.create(kv_keys.program_key(program_id), record.to_bytes())
        except KeyWrongLastSequenceError:
            raise ApiError("conflict", f"the program {shown(program_id)} exists already", "programId") from None
        return record

    @idempotent("update")
    async def update(self, program_id: str, *, name: str | None = None, market_context: str | None = None,
                     schedule: ScheduleSpec | None = None, signal_name: str | None = None,
                     signal_type: str | None = None, level: float | None = None, priority: int | None = None,
                     response_required: str | None = None, notification: str | None = None,
                     refuse_overlaps: bool | None = None) -> ProgramRecord:
        """Only what is given changes; the scheduler then follows with the events not started yet."""
        check_program_id(program_id)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_group_name(name)
        if market_context is not None:
            changes["market_context"] = check_market_context(market_context)
        if schedule is not None:
            changes["schedule"] = check_schedule(schedule)
        if signal_name is not None:
            changes["signal_name"] = signal_name
        if signal_type is not None:
            changes["signal_type"] = signal_type
        if level is not None:
            changes["level"] = level
        if priority is not None:
            changes["priority"] = check_priority(priority)
        if response_required is not None:
            changes["response_required"] = self._response_required(response_required)
        if notification is not None:
            changes["notification"] = check_optional_duration(notification, "notification")
        if refuse_overlaps is not None:
            changes["refuse_overlaps"] = refuse_overlaps

        def change(record: ProgramRecord) -> ProgramRecord:
            updated = record.model_copy(update=changes)
            check_level(updated.level, updated.signal_name, updated.signal_type)
            return updated

        return await self._change(program_id, change)

    @idempotent("enroll")
    async def enroll(self, program_id: str, ven_ids: Iterable[str] | None, group_ids: Iterable[str] | None,
                     ) -> ProgramRecord:
        check_program_id(program_id)
        vens = await self._known_vens(ven_ids or [])
        groups = await self._known_groups(group_ids or [])
        if not vens and not groups:
            raise InvalidInput("venIds", "give at least one VEN id or group id to enroll")

        def change(record: ProgramRecord) -> ProgramRecord:
            return record.model_copy(update={
                "ven_ids": list(dict.fromkeys(record.ven_ids + vens)),
                "group_ids": list(dict.fromkeys(record.group_ids + groups)),
            })

        return await self._change(program_id, change)

    @idempotent("unenroll")
    async def unenroll(self, program_id: str, ven_ids: Iterable[str] | None, group_ids: Iterable[str] | None,
                       ) -> ProgramRecord:
        check_program_id(program_id)
        gone_vens = set(self._ven_ids(ven_ids or []))
        gone_groups = set(check_group_ids(group_ids))

        def change(record: ProgramRecord) -> ProgramRecord:
            return record.model_copy(update={
                "ven_ids": [v for v in record.ven_ids if v not in gone_vens],
                "group_ids": [g for g in record.group_ids if g not in gone_groups],
            })

        return await self._change(program_id, change)

    @idempotent("delete")
    async def delete(self, program_id: str) -> ProgramRecord | None:
        check_program_id(program_id)
        record, revision = await self.get(program_id)
        if revision is None:
            return None
        try:
            await self.kv.delete(kv_keys.program_key(program_id), last=revision)
        except Exception as e:
            if isinstance(e, KeyWrongLastSequenceError) or getattr(e, "err_code", None) in _WRONG_LAST_SEQUENCE:
                raise ApiError("conflict", f"the program {shown(program_id)} changed meanwhile; try again",
                               "programId") from None
            raise
        return record

    async def _change(self, program_id: str, change: Callable[[ProgramRecord], ProgramRecord]) -> ProgramRecord:
        for _ in range(CAS_ATTEMPTS):
            record, revision = await self.get(program_id)
            if record is None:
                raise _no_program(program_id)
            updated = change(record)
            if updated == record:
                return record
            updated = ProgramRecord.model_validate(updated.model_dump() | {"updated_at": utcnow()})
            try:
                await self.kv.update(kv_keys.program_key(program_id), updated.to_bytes(), last=revision)
            except KeyWrongLastSequenceError:
                continue
            return updated
        raise ApiError("conflict", f"the program {shown(program_id)} kept changing; try again", "programId")

    @staticmethod
    def _response_required(value: str) -> str:
        if value not in RESPONSE_REQUIRED:
            raise InvalidInput("responseRequired", f"{shown(value)} is not one of {', '.join(RESPONSE_REQUIRED)}")
        return value

    @staticmethod
    def _ven_ids(ven_ids: Iterable[str]) -> list[str]:
        ids = list(ven_ids)
        for i, ven_id in enumerate(ids):
            check_token(ven_id, f"venIds[{i}]", "VEN id")
        ids = list(dict.fromkeys(ids))
        if len(ids) > MAX_TARGETED_VENS:
            raise InvalidInput("venIds", f"at most {MAX_TARGETED_VENS} VENs, not {len(ids)}")
        return ids

    async def _known_vens(self, ven_ids: Iterable[str]) -> list[str]:
        ids = self._ven_ids(ven_ids)
        if not ids:
            return []
        known = await self.store.known_vens(ids)
        unknown = [v for v in ids if v not in known]
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise ApiError("unknown_ven", f"unknown VEN {shown(unknown[0])}{more}", f"venIds[{ids.index(unknown[0])}]")
        return ids

    async def _known_groups(self, group_ids: Iterable[str]) -> list[str]:
        ids = check_group_ids(group_ids)
        members = await self.groups.members(ids) if ids else {}
        for i, group_id in enumerate(ids):
            if group_id not in members:
                raise ApiError("not_found", f"no group {shown(group_id)}", f"groupIds[{i}]")
        return ids
