"""The ``readings`` query: raw readings, or one row per time bucket, for one VEN (per resource and
rID), or aggregated over a group's members, a program's enrolled VENs or every VEN; newest first,
paged by an opaque cursor (``after``: the ``cursor`` of the last row seen).

Buckets are aligned on the epoch in UTC (``PT15M`` buckets start at :00, :15, ...; ``P1D`` at
00:00Z). A bucket row's ``value`` is the mean of its readings; ``min``, ``max``, ``sum`` and
``count`` are over its readings too, and ``total`` is the sum over the series (VEN and rID) of each
one's mean in the bucket: for power readings, the aggregate load.

Buckets that 15 minutes divide (``PT15M``, ``PT1H``, ``P1D``) are read from the 15-minute rollups
(``readings_15m``, see ``adrstack.shared.rollups``) for the whole 15 minutes inside the window, and
from ``readings`` for the unaligned edges of the window (less than 15 minutes at either end), so
they answer what the readings give (sums added in another order: equal up to float rounding) at
about 1/90 of the rows (10 s sampling). ``PT1M``, ``PT5M`` and raw rows read ``readings``. A
reading without resource, measurement or unit is grouped with those where it is '' (the rollup's
key cannot hold NULL); both are shown as null.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from adrstack.shared import rollups

from .errors import ApiError, InvalidInput
from .state import ApiState
from .validation import check_token, shown

BUCKETS = {"PT1M": 60, "PT5M": 300, "PT15M": 900, "PT1H": 3600, "P1D": 86400}
MAX_WINDOW = timedelta(days=400)  # of a bucketed query: a year and a bit of history per call
MAX_RAW_WINDOW = timedelta(days=1)  # of raw readings over several VENs


@dataclass
class Row:
    at: datetime
    value: float
    ven_id: str | None = None
    resource_id: str | None = None
    r_id: str | None = None
    report_specifier_id: str | None = None
    measurement: str | None = None
    unit: str | None = None
    bucket: str | None = None
    min: float | None = None
    max: float | None = None
    sum: float | None = None
    count: int | None = None
    total: float | None = None
    series: int | None = None
    cursor: str = ""


def encode_cursor(key: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list) or len(key) != size or not all(isinstance(k, str) for k in key):
            raise ValueError
        key[0] = datetime.fromisoformat(key[0])
        if key[0].tzinfo is None:
            raise ValueError
        return key
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput("after", "is not a cursor of this query (give the cursor of the last row you got)") from None


async def scope_vens(state: ApiState, ven_id: str | None, group_id: str | None,
                     program_id: str | None) -> list[str] | None:
    """The VENs asked for (None: all); NOT_FOUND for an unknown VEN, group or program."""
    given = [name for name, v in (("venId", ven_id), ("groupId", group_id), ("program", program_id)) if v is not None]
    if len(given) > 1:
        raise InvalidInput(given[1], f"give one of venId, groupId and program, not {' and '.join(given)}")
    if ven_id is not None:
        check_token(ven_id, "venId", "VEN id")
        if not await state.store.known_vens([ven_id]):
            raise ApiError("not_found", f"no VEN {shown(ven_id)}", "venId")
        return [ven_id]
    if group_id is not None:
        check_token(group_id, "groupId", "group id")
        record, _ = await state.groups.get(group_id)
        if record is None:
            raise ApiError("not_found", f"no group {shown(group_id)}", "groupId")
        return list(record.ven_ids)
    if program_id is not None:
        check_token(program_id, "program", "program id")
        record, _ = await state.programs.get(program_id)
        if record is None:
            raise ApiError("not_found", f"no program {shown(program_id)}", "program")
        members = await state.groups.members(list(record.group_ids))
        return sorted(set(record.ven_ids).union(*members.values()))
    return None


RAW_SQL = """
SELECT ven_id, resource_id, r_id, report_specifier_id, measurement, unit, at, value FROM readings
WHERE (CAST(:all AS boolean) OR ven_id = ANY(CAST(:vens AS text[])))
  AND at >= :since AND at < :until
  AND (CAST(:after_at AS timestamptz) IS NULL OR at < :after_at
       OR (at = :after_at AND (ven_id, r_id, report_specifier_id) > (:k1, :k2, :k3)))
ORDER BY at DESC, ven_id, r_id, report_specifier_id
LIMIT :limit
"""

_VENS = "(CAST(:all AS boolean) OR ven_id = ANY(CAST(:vens AS text[])))"
_ROLLUP = timedelta(seconds=rollups.SECONDS)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _raw_parts(since: str, until: str, buckets: tuple[str, str] | None = None) -> str:
    """Readings in [since, until) as parts of one reading each (the columns of the rollup's).

    With ``buckets`` (the rollup buckets that hold that time), only the VENs those buckets have
    readings of: the readings' key leads with the VEN, so a few minutes of every VEN are then
    read by the key, VEN by VEN, instead of a scan of the whole day's partition."""
    vens = _VENS if buckets is None else (
        f"ven_id IN (SELECT ven_id FROM {rollups.TABLE} WHERE {_VENS} "
        f"AND bucket >= {buckets[0]} AND bucket < {buckets[1]})")
    return f"""
    SELECT at, ven_id, coalesce(resource_id, '') AS resource_id, r_id, coalesce(measurement, '') AS measurement,
           coalesce(unit, '') AS unit, 1 AS n, value AS total, value AS mn, value AS mx
    FROM readings WHERE {vens} AND at >= {since} AND at < {until}"""


# Parts of the window's readings: (at, series, n, total, mn, mx). Raw: one per reading. Rolled
# up: 15-minute rollups over [:lo, :hi), the readings of the unaligned edges [:since, :lo) and
# [:hi, :until) one by one (:first is the start of since's bucket).
RAW_PARTS = _raw_parts(":since", ":until")
ROLLUP_PARTS = f"""
    SELECT bucket AS at, ven_id, resource_id, r_id, measurement, unit, n, total, mn, mx
    FROM {rollups.TABLE} WHERE {_VENS} AND bucket >= :lo AND bucket < :hi
    UNION ALL{_raw_parts(":since", ":lo", (":first", ":lo"))}
    UNION ALL{_raw_parts(":hi", ":until", (":hi", ":until"))}"""

# date_bin with the epoch as origin: UTC-aligned buckets (and about 3x cheaper per row than
# to_timestamp(floor(extract(epoch ...)))).
_BUCKET = rollups.bucket_of("at", ":secs")

# One VEN: a row per bucket, resource and rID (and measurement and unit, which an rID keeps).
PER_SERIES_SQL = f"""
SELECT * FROM (
    SELECT {_BUCKET} AS bucket, ven_id, resource_id, r_id, measurement, unit, sum(total) / sum(n) AS mean,
           min(mn) AS mn, max(mx) AS mx, sum(total) AS total_sum, sum(n) AS n
    FROM ({{parts}}) p
    GROUP BY 1, ven_id, resource_id, r_id, measurement, unit
) g
WHERE CAST(:after_at AS timestamptz) IS NULL OR g.bucket < :after_at
   OR (g.bucket = :after_at AND (g.resource_id, g.r_id, g.measurement, g.unit) > (:k1, :k2, :k3, :k4))
ORDER BY g.bucket DESC, g.resource_id, g.r_id, g.measurement, g.unit
LIMIT :limit
"""

# Several VENs: a row per bucket, measurement and unit, over every series in it.
AGGREGATED_SQL = f"""
WITH series AS (
    SELECT {_BUCKET} AS bucket, ven_id, r_id, measurement, unit, sum(total) / sum(n) AS mean, min(mn) AS mn,
           max(mx) AS mx, sum(total) AS total_sum, sum(n) AS n
    FROM ({{parts}}) p
    GROUP BY 1, ven_id, r_id, measurement, unit
)
SELECT * FROM (
    SELECT bucket, measurement, unit, sum(total_sum) / sum(n) AS mean, min(mn) AS mn, max(mx) AS mx,
           sum(total_sum) AS total_sum, sum(n) AS n, sum(mean) AS load, count(*) AS series
    FROM series GROUP BY bucket, measurement, unit
) g
WHERE CAST(:after_at AS timestamptz) IS NULL OR g.bucket < :after_at
   OR (g.bucket = :after_at AND (g.measurement, g.unit) > (:k1, :k2))
ORDER BY g.bucket DESC, g.measurement, g.unit
LIMIT :limit
"""


def rolled_up(secs: int) -> bool:
    """Whether buckets of ``secs`` are read from the 15-minute rollups."""
    return secs % rollups.SECONDS == 0


def bucket_statement(per_ven: bool, rolled: bool) -> str:
    """The SQL of a bucketed query: one VEN's series or an aggregate, from the rollups or raw."""
    return (PER_SERIES_SQL if per_ven else AGGREGATED_SQL).format(parts=ROLLUP_PARTS if rolled else RAW_PARTS)


def rollup_window(since: datetime, until: datetime) -> dict:
    """``lo``/``hi``: the whole 15-minute buckets inside [since, until) (read from the rollups);
    the readings before ``lo`` and from ``hi`` on are read one by one. A window inside one bucket
    is all edge (lo = hi = until). ``first``: the start of since's bucket."""
    hi = until - (until - _EPOCH) % _ROLLUP
    lo = first = since - (since - _EPOCH) % _ROLLUP
    if lo < since:  # since's bucket starts before the window: its part in it is an edge
        lo = lo + _ROLLUP if hi - lo > _ROLLUP else hi  # (never past hi: no overflow near datetime.max)
    if lo >= hi:
        lo = hi = until
    return {"first": first, "lo": lo, "hi": hi}


def _none(value: str) -> str | None:
    return value or None


async def query(state: ApiState, vens: list[str] | None, since: datetime | None, until: datetime | None,
                bucket: str | None, limit: int, after: str | None, per_ven: bool, now: datetime) -> list[Row]:
    if until is None:  # raw readings: no end; buckets: up to now
        until = now if bucket is not None else datetime.max.replace(tzinfo=now.tzinfo)
    if bucket is not None and bucket not in BUCKETS:
        raise InvalidInput("bucket", f"{shown(bucket)} is not one of {', '.join(BUCKETS)}")
    if bucket is not None:
        if since is None:
            raise InvalidInput("since", "a bucketed query needs a window: give since (and until, default now)")
        if until - since > MAX_WINDOW:
            raise InvalidInput("since", f"a bucketed query covers at most {MAX_WINDOW.days} days; ask in parts")
    if bucket is None and not per_ven:
        # Raw rows over many VENs are sorted by time across them: bound the partitions read.
        if since is None or (until - since) > MAX_RAW_WINDOW:
            raise InvalidInput("since", f"raw readings of several VENs need a window of at most "
                                        f"{MAX_RAW_WINDOW.days} day: give since (and until), or a bucket")
    if since is not None and since >= until:
        raise InvalidInput("until", "until must be after since")
    if vens is not None and not vens:
        return []  # a group or program without VENs
    params: dict = {"all": vens is None, "vens": vens or [], "since": since or datetime.min.replace(tzinfo=until.tzinfo),
                    "until": until, "limit": limit, "after_at": None, "k1": "", "k2": "", "k3": "", "k4": ""}
    if bucket is None:
        if after is not None:
            key = decode_cursor(after, 4)
            params.update(after_at=key[0], k1=key[1], k2=key[2], k3=key[3])
        async with state.store.engine.connect() as conn:
            rows = (await conn.execute(text(RAW_SQL), params)).all()
        return [Row(at=r.at, value=r.value, ven_id=r.ven_id, resource_id=r.resource_id, r_id=r.r_id,
                    report_specifier_id=r.report_specifier_id, measurement=r.measurement, unit=r.unit,
                    cursor=encode_cursor([r.at.isoformat(), r.ven_id, r.r_id, r.report_specifier_id]))
                for r in rows]
    params["secs"] = BUCKETS[bucket]
    rolled = rolled_up(params["secs"])
    if rolled:
        params.update(rollup_window(params["since"], until))
    statement = text(bucket_statement(per_ven, rolled))
    if per_ven:
        if after is not None:
            key = decode_cursor(after, 5)
            params.update(after_at=key[0], k1=key[1], k2=key[2], k3=key[3], k4=key[4])
        async with state.store.engine.connect() as conn:
            rows = (await conn.execute(statement, params)).all()
        return [Row(at=r.bucket, value=float(r.mean), ven_id=r.ven_id, resource_id=_none(r.resource_id), r_id=r.r_id,
                    measurement=_none(r.measurement), unit=_none(r.unit), bucket=bucket, min=r.mn, max=r.mx,
                    sum=r.total_sum, count=r.n, total=float(r.mean), series=1,
                    cursor=encode_cursor([r.bucket.isoformat(), r.resource_id, r.r_id, r.measurement, r.unit]))
                for r in rows]
    if after is not None:
        key = decode_cursor(after, 3)
        params.update(after_at=key[0], k1=key[1], k2=key[2])
    async with state.store.engine.connect() as conn:
        rows = (await conn.execute(statement, params)).all()
    return [Row(at=r.bucket, value=float(r.mean), measurement=_none(r.measurement), unit=_none(r.unit), bucket=bucket,
                min=r.mn, max=r.mx, sum=r.total_sum, count=int(r.n), total=float(r.load), series=r.series,
                cursor=encode_cursor([r.bucket.isoformat(), r.measurement, r.unit]))
            for r in rows]
