"""15-minute rollups of readings (``readings_15m``): the one definition telemetry writes with, the
migration and the history benchmark backfill with, and the API reads.

A rollup row is the count, sum, min and max of a series' readings in one UTC-aligned 15-minute
bucket, keyed by (VEN, bucket start, report specifier, rID, resource, measurement, unit). The
resource, measurement and unit are in the key because the bucketed queries group by them: a
series whose unit changes inside a bucket keeps two rows there, as the raw readings would give.
A missing resource, measurement or unit is stored as '' (key columns cannot be NULL); the API
shows '' as null, as it does for raw readings.

Rows are only ever added to (``n + n'``, ``sum + sum'``, ``least``, ``greatest``), from readings
that were actually inserted: telemetry feeds the merge's ``RETURNING`` rows (a point already
stored inserts nothing, so a redelivered batch adds nothing), the backfill feeds stored readings.
Any coarser bucket that 15 minutes divides (1 hour, 1 day) is a re-aggregation: the mean is
sum(sum) / sum(n), the min the min of the mins, the max the max of the maxes (exact but for the
float rounding of sums added in another order).
"""

from __future__ import annotations

from datetime import datetime

TABLE = "readings_15m"
SECONDS = 900
DEFAULT = f"{TABLE}_default"
KEY = ("ven_id", "bucket", "report_specifier_id", "r_id", "resource_id", "measurement", "unit")
COLUMNS = KEY + ("n", "total", "mn", "mx")
# What a source of readings must give (a query or a CTE's name) for :func:`add_from`.
SOURCE_COLUMNS = ("ven_id", "report_specifier_id", "r_id", "resource_id", "measurement", "unit", "at", "value")

EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


def bucket_of(column: str, seconds: str | int = SECONDS) -> str:
    """The SQL of ``column``'s bucket start (UTC-aligned on the epoch) for a bucket of ``seconds``
    (a number or a bind parameter)."""
    return f"date_bin(make_interval(secs => {seconds}), {column}, {EPOCH})"


def add_from(source: str) -> str:
    """``INSERT`` that adds the readings ``source`` gives (SOURCE_COLUMNS) to the rollup.

    Rows are written in key order, so two writers adding to overlapping buckets wait on each
    other instead of deadlocking (see telemetry's store)."""
    key = ", ".join(KEY)
    return f"""
INSERT INTO {TABLE} AS r ({", ".join(COLUMNS)})
SELECT ven_id, {bucket_of("at")}, report_specifier_id, r_id, coalesce(resource_id, ''), coalesce(measurement, ''),
       coalesce(unit, ''), count(*), sum(value), min(value), max(value)
FROM {source} s
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT ({key}) DO UPDATE SET
    n = r.n + EXCLUDED.n, total = r.total + EXCLUDED.total,
    mn = least(r.mn, EXCLUDED.mn), mx = greatest(r.mx, EXCLUDED.mx)
"""


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def backfill_sql(since: datetime | None = None, until: datetime | None = None,
                 vens: list[str] | None = None) -> str:
    """The statement that adds stored readings (at in [since, until), of ``vens`` if given) to the
    rollup: for readings written while the rollup was not kept (the migration that creates it,
    readings generated straight into the table). Readings the rollup already counts would be
    counted twice, so the caller backfills each reading once. A plain string (bounds rendered as
    literals), so alembic, psycopg and SQLAlchemy all run the same text."""
    where = []
    if since is not None:
        where.append(f"at >= {_literal(since.isoformat())}::timestamptz")
    if until is not None:
        where.append(f"at < {_literal(until.isoformat())}::timestamptz")
    if vens is not None:
        where.append(f"ven_id = ANY(ARRAY[{', '.join(map(_literal, vens)) or 'NULL'}]::text[])")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return add_from(f"(SELECT {', '.join(SOURCE_COLUMNS)} FROM readings{condition})")
