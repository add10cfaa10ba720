"""Programs: a market context with enrolled VENs and groups, a default signal and a recurring
schedule in a named time zone, kept in the ``openadr-programs`` KV bucket (key
``program.<program_id>``, written by the api with compare-and-set). The scheduler expands each
program's schedule into DR events ahead of time (see :func:`occurrences`); the gateway resolves an
event's market-context target through the programs.

Local times and daylight saving (deliberate, tested):

- a window is a local start and end time on each of its days; its UTC instants follow the zone's
  offset *on that day* (17:00 Europe/Paris is 15:00Z in summer and 16:00Z in winter);
- a local time that does not exist (skipped by a spring-forward change) is read with the offset in
  force before the change, i.e. it is moved forward by the gap (02:30 becomes 03:30 CEST);
- a local time that happens twice (autumn fall-back) is the first of the two (``fold=0``);
- a window that is empty in UTC after that (e.g. 02:00-03:00 on a spring-forward day) is skipped.

One window per local day at most (rules may not share a weekday): an occurrence is named by its
program and local date, ``prg-<program_id>-<yyyymmdd>``, so editing a window's times modifies the
same event.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, field_validator, model_validator

from .messages import Contract, ResponseRequired, _token, utcnow

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

PROGRAM_ID_MAX_LENGTH = 100  # the event ids derived from it add 13 characters (token limit 128)
EVENT_ID_PREFIX = "prg-"
_EVENT_ID = re.compile(r"^prg-(?P<program>[A-Za-z0-9_-]+)-(?P<day>\d{8})(?:r(?P<revival>[1-9]\d{0,5}))?$")
# DrEvent.cancel_reason of an occurrence the planner cancelled because its day left the schedule.
PROGRAM_CANCEL = "no longer in its program's schedule"
# The SQL (Postgres regex) form of the same, for one program's occurrences.
OCCURRENCE_ID_SQL = "^prg-{program}-[0-9]{{8}}(r[1-9][0-9]{{0,5}})?$"
MAX_RULES = 7
MAX_EXCLUSIONS = 1000


def zone(name: str) -> ZoneInfo:
    """The named IANA time zone; ValueError for a name that is not one."""
    if not isinstance(name, str) or not name or name.startswith("/") or ".." in name:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Paris)") from None


class ScheduleRule(Contract):
    """Every ``days`` (local), from ``start`` to ``end`` local time (same day; end after start)."""

    days: list[Weekday] = Field(min_length=1)
    start: time
    end: time

    @field_validator("days")
    @classmethod
    def _unique_days(cls, v: list[str]) -> list[str]:
        return sorted(set(v), key=WEEKDAYS.index)

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, v: time) -> time:
        if v.tzinfo is not None:
            raise ValueError("a local time of day, without an offset (the schedule's time zone applies)")
        return v.replace(microsecond=0)

    @model_validator(mode="after")
    def _end_after_start(self) -> "ScheduleRule":
        if self.end <= self.start:
            raise ValueError("end must be after start (windows do not cross midnight)")
        return self


class ProgramSchedule(Contract):
    time_zone: str
    rules: list[ScheduleRule] = Field(default_factory=list, max_length=MAX_RULES)
    exclusion_dates: list[date] = Field(default_factory=list, max_length=MAX_EXCLUSIONS)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone(v)
        return v

    @model_validator(mode="after")
    def _one_window_a_day(self) -> "ProgramSchedule":
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            for day in rule.days:
                if day in seen:
                    raise ValueError(f"rules[{i}] and rules[{seen[day]}] both fall on {day}: one window per day")
                seen[day] = i
        return self


class ProgramRecord(Contract):
    """One program as kept in the ``openadr-programs`` bucket (key ``program.<program_id>``)."""

    program_id: str
    name: str | None = None
    market_context: str
    ven_ids: list[str] = Field(default_factory=list)
    group_ids: list[str] = Field(default_factory=list)
    # The default signal of its events: one interval per window with this level.
    signal_name: str = "SIMPLE"
    signal_type: str = "level"
    level: float = 1.0
    priority: int = 0
    response_required: ResponseRequired = "always"
    # How long before a window its event reaches VENs (it is created no later than that).
    notification: timedelta = timedelta(hours=1)
    schedule: ProgramSchedule
    # 2.0b rule 18 (certification case A_E3_0530): no two events of this market context overlap.
    # When set, the scheduler refuses a create or modify whose event (market_context, or a
    # market_contexts target) is this program's market context and whose active window
    # [start_at, completes_at) overlaps another event of it not cancelled or completed; the
    # program's own occurrences that would overlap are skipped. Off: events may overlap.
    refuse_overlaps: bool = False
    updated_at: AwareDatetime = Field(default_factory=utcnow)

    @field_validator("program_id")
    @classmethod
    def _program_id(cls, v: str) -> str:
        _token(v, "program_id")
        if len(v) > PROGRAM_ID_MAX_LENGTH:
            raise ValueError(f"program_id has at most {PROGRAM_ID_MAX_LENGTH} characters")
        return v

    _ven_ids = field_validator("ven_ids")(lambda v: [_token(x, "ven_id") for x in dict.fromkeys(v)])
    _group_ids = field_validator("group_ids")(lambda v: [_token(x, "group_id") for x in dict.fromkeys(v)])

    @field_validator("notification")
    @classmethod
    def _notification(cls, v: timedelta) -> timedelta:
        if v < timedelta(0):
            raise ValueError("notification must not be negative")
        return v

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @property
    def enrolled(self) -> bool:
        return bool(self.ven_ids or self.group_ids)


def _instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of local ``at`` on ``day`` (nonexistent: moved forward; ambiguous: first)."""
    return datetime.combine(day, at, tzinfo=tz).replace(fold=0).astimezone(timezone.utc)


class Occurrence(tuple):
    """(local date, start UTC, end UTC)."""

    __slots__ = ()

    def __new__(cls, day: date, start: datetime, end: datetime):
        return super().__new__(cls, (day, start, end))

    @property
    def day(self) -> date:
        return self[0]

    @property
    def start(self) -> datetime:
        return self[1]

    @property
    def end(self) -> datetime:
        return self[2]


def occurrences(schedule: ProgramSchedule, since: datetime, until: datetime) -> list[Occurrence]:
    """The windows of ``schedule`` that start in [since, until), in order, exclusion dates left out."""
    tz = zone(schedule.time_zone)
    excluded = set(schedule.exclusion_dates)
    by_day = {day: rule for rule in schedule.rules for day in rule.days}
    if not by_day or until <= since:
        return []
    # Local dates that can hold a start in the range (offsets are within a day of UTC).
    first = since.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date() + timedelta(days=1)
    out = []
    day = first
    while day <= last:
        rule = by_day.get(WEEKDAYS[day.weekday()])
        if rule is not None and day not in excluded:
            start, end = _instant(day, rule.start, tz), _instant(day, rule.end, tz)
            if end > start and since <= start < until:
                out.append(Occurrence(day, start, end))
        day += timedelta(days=1)
    return out


def occurrence_event_id(program_id: str, day: date, revival: int = 0) -> str:
    """``prg-<program_id>-<yyyymmdd>``; an occurrence brought back after the planner cancelled it
    (its day excluded, then no longer) is a new event, ``...r<n>`` (a cancelled event is final)."""
    return f"{EVENT_ID_PREFIX}{program_id}-{day:%Y%m%d}" + (f"r{revival}" if revival else "")


def parse_occurrence_event_id(event_id: str) -> tuple[str, date, int] | None:
    """(program_id, local date, revival) of an event id made by :func:`occurrence_event_id`, else None."""
    m = _EVENT_ID.match(event_id)
    if m is None:
        return None
    try:
        day = datetime.strptime(m["day"], "%Y%m%d").date()
    except ValueError:
        return None
    return m["program"], day, int(m["revival"] or 0)
