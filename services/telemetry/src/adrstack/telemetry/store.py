"""Writes one RowBatch in the caller's transaction. Every statement is idempotent, so a
redelivered batch changes nothing that was already written.

Readings take the bulk path: ``COPY ... FROM STDIN (FORMAT BINARY)`` into a session-local staging
table (temporary: no WAL, emptied at every commit or rollback), then one
``INSERT INTO readings ... SELECT ... FROM readings_staging ON CONFLICT DO NOTHING`` merges them on
the natural key in the same transaction as the batch's other facts.

Policy for a reading whose key (VEN, report specifier, rID, timestamp) is already stored:
**first wins**. The value stored first stays; a later value for the same point (a VEN re-sending
a report with another value, or a replay) is ignored; inside one batch the first in stream order
is the one copied (:class:`.rows.RowBatch`). It makes every redelivery a no-op that writes nothing.

The same statement adds the readings it actually inserted (its ``RETURNING`` rows: a point already
stored returns nothing) to the 15-minute rollups (``adrstack.shared.rollups``), so the rollups
count each stored reading exactly once, whatever is redelivered or merged by two replicas at once.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from adrstack.shared import rollups

from .report_requests import write_report_requests
from .rows import READING_COLUMNS, STATUS_ORDER, RowBatch
from .status import write_statuses

VEN_REGISTERED = """
INSERT INTO vens (ven_id, ven_name, registration_id, registered_at, deregistered_at, last_seen_at,
                  profile_name, transport_name, http_pull_model, report_only, updated_at)
VALUES (%(ven_id)s, %(ven_name)s, %(registration_id)s, %(registered_at)s, NULL, NULL,
        %(profile_name)s, %(transport_name)s, %(http_pull_model)s, %(report_only)s, %(updated_at)s)
ON CONFLICT (ven_id) DO UPDATE SET
    ven_name = EXCLUDED.ven_name,
    registration_id = EXCLUDED.registration_id,
    registered_at = LEAST(vens.registered_at, EXCLUDED.registered_at),
    deregistered_at = NULL,
    profile_name = EXCLUDED.profile_name,
    transport_name = EXCLUDED.transport_name,
    http_pull_model = EXCLUDED.http_pull_model,
    report_only = EXCLUDED.report_only,
    updated_at = EXCLUDED.updated_at
WHERE vens.updated_at <= EXCLUDED.updated_at
"""

VEN_DEREGISTERED = """
UPDATE vens SET deregistered_at = %(at)s, updated_at = %(at)s
WHERE ven_id = %(ven_id)s AND updated_at <= %(at)s
"""

# A heartbeat for a VEN without a row creates nothing: registration makes the row.
VEN_SEEN = """
UPDATE vens SET last_seen_at = GREATEST(last_seen_at, %(at)s) WHERE ven_id = %(ven_id)s
"""

# Created once per session (a temporary table lives as long as the connection); IF NOT EXISTS
# also covers a creation rolled back with its transaction.
READINGS_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS readings_staging (
    ven_id text, report_specifier_id text, r_id text, resource_id text, measurement text, unit text,
    at timestamptz, value float8, received_at timestamptz
) ON COMMIT DELETE ROWS
"""

READINGS_COPY = f"COPY readings_staging ({', '.join(READING_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
READING_TYPES = ("text",) * 6 + ("timestamptz", "float8", "timestamptz")

# First wins (see the module doc). Every writer inserts in key order, so two telemetry replicas
# merging overlapping points wait on each other instead of deadlocking. The rollup rows come
# after every reading of the statement (they are aggregated, then sorted, from all the RETURNING
# rows) and in their key order too: a writer waiting on another's rollup row holds no reading the
# other still has to insert.
READINGS_MERGE = f"""
WITH inserted AS (
    INSERT INTO readings ({", ".join(READING_COLUMNS)})
    SELECT {", ".join(READING_COLUMNS)} FROM readings_staging
    ORDER BY ven_id, at, report_specifier_id, r_id
    ON CONFLICT (ven_id, report_specifier_id, r_id, at) DO NOTHING
    RETURNING {", ".join(rollups.SOURCE_COLUMNS)}
)
{rollups.add_from("inserted")}
"""

REPORT_DESCRIPTION = """
INSERT INTO report_descriptions (ven_id, report_specifier_id, r_id, report_name, resource_id,
                                 report_type, reading_type, measurement, unit, scale, registered_at)
VALUES (%(ven_id)s, %(report_specifier_id)s, %(r_id)s, %(report_name)s, %(resource_id)s,
        %(report_type)s, %(reading_type)s, %(measurement)s, %(unit)s, %(scale)s, %(registered_at)s)
ON CONFLICT (ven_id, report_specifier_id, r_id) DO UPDATE SET
    report_name = EXCLUDED.report_name,
    resource_id = EXCLUDED.resource_id,
    report_type = EXCLUDED.report_type,
    reading_type = EXCLUDED.reading_type,
    measurement = EXCLUDED.measurement,
    unit = EXCLUDED.unit,
    scale = EXCLUDED.scale,
    registered_at = EXCLUDED.registered_at
WHERE report_descriptions.registered_at <= EXCLUDED.registered_at
"""

# One answer of a VEN to an event. The current state row decides, under its row lock, whether
# the answer is news: a different opt type or modification number, and newer than the answer in
# force (by modification number, then time). Only news changes the state and adds one history
# row; a re-sent copy (whatever its message id), a redelivery or an answer that arrives after a
# newer one changes nothing. Concurrent consumers serialize on the (ven_id, event_id) key: the
# second sees the first one's committed state and finds nothing new.
EVENT_RESPONSE = """
WITH changed AS (
    INSERT INTO event_opt_states AS s (ven_id, event_id, modification_number, opt_type, source,
                                       responded_at, response_id)
    VALUES (%(ven_id)s, %(event_id)s, %(modification_number)s, %(opt_type)s, %(source)s,
            %(responded_at)s, %(id)s)
    ON CONFLICT (ven_id, event_id) DO UPDATE SET
        modification_number = EXCLUDED.modification_number,
        opt_type = EXCLUDED.opt_type,
        source = EXCLUDED.source,
        responded_at = EXCLUDED.responded_at,
        response_id = EXCLUDED.response_id
    WHERE (s.modification_number, s.opt_type)
          IS DISTINCT FROM (EXCLUDED.modification_number, EXCLUDED.opt_type)
      AND (coalesce(EXCLUDED.modification_number, -1), EXCLUDED.responded_at)
          > (coalesce(s.modification_number, -1), s.responded_at)
    RETURNING s.*
)
INSERT INTO event_responses (id, ven_id, event_id, modification_number, opt_type, source, responded_at)
SELECT response_id, ven_id, event_id, modification_number, opt_type, source, responded_at FROM changed
ON CONFLICT (id) DO NOTHING
"""

# Two consumers may store a later copy of an answer before an earlier one: the earlier copy then
# moves the answer's time (and its history row's) back to when it was first given.
EARLIER_COPY = """
WITH earlier AS (
    UPDATE event_opt_states s SET responded_at = %(responded_at)s
    WHERE s.ven_id = %(ven_id)s AND s.event_id = %(event_id)s
      AND s.modification_number IS NOT DISTINCT FROM %(modification_number)s AND s.opt_type = %(opt_type)s
      AND s.responded_at > %(responded_at)s
    RETURNING s.response_id, s.responded_at
)
UPDATE event_responses r SET responded_at = earlier.responded_at FROM earlier WHERE r.id = earlier.response_id
"""

# Last-wins by when the VEN's message was handled: a redelivered older version changes nothing.
OPT_SCHEDULE = """
INSERT INTO opt_schedules (ven_id, opt_id, opt_type, opt_reason, market_context, event_id, modification_number,
                           resource_ids, device_classes, windows, sent_at, cancelled_at)
VALUES (%(ven_id)s, %(opt_id)s, %(opt_type)s, %(opt_reason)s, %(market_context)s, %(event_id)s,
        %(modification_number)s, %(resource_ids)s, %(device_classes)s, %(windows)s, %(sent_at)s, %(cancelled_at)s)
ON CONFLICT (ven_id, opt_id) DO UPDATE SET
    opt_type = EXCLUDED.opt_type,
    opt_reason = EXCLUDED.opt_reason,
    market_context = EXCLUDED.market_context,
    event_id = EXCLUDED.event_id,
    modification_number = EXCLUDED.modification_number,
    resource_ids = EXCLUDED.resource_ids,
    device_classes = EXCLUDED.device_classes,
    windows = EXCLUDED.windows,
    sent_at = EXCLUDED.sent_at,
    cancelled_at = EXCLUDED.cancelled_at
WHERE opt_schedules.sent_at <= EXCLUDED.sent_at
"""

PUSH_FAILURE = """
INSERT INTO push_failures (id, ven_id, event_ids, attempt, error, http_status, gave_up, occurred_at)
VALUES (%(id)s, %(ven_id)s, %(event_ids)s, %(attempt)s, %(error)s, %(http_status)s, %(gave_up)s, %(occurred_at)s)
ON CONFLICT (id) DO NOTHING
"""

EVENT_TRANSITION = """
INSERT INTO event_transitions (id, event_id, transition, modification_number, status, occurred_at)
VALUES (%(id)s, %(event_id)s, %(transition)s, %(modification_number)s, %(status)s, %(occurred_at)s)
ON CONFLICT (id) DO NOTHING
"""

_RANK = "array_position(ARRAY[" + ", ".join(f"'{s}'" for s in STATUS_ORDER) + "]::text[], {col})"

# An older snapshot (redelivered, or published out of order) never replaces a newer one.
DR_EVENT = f"""
INSERT INTO dr_events (event_id, modification_number, status, signal_name, signal_type, start_at, end_at,
                       intervals, targets, priority, market_context, response_required, created_at,
                       modified_at, snapshot)
VALUES (%(event_id)s, %(modification_number)s, %(status)s, %(signal_name)s, %(signal_type)s, %(start_at)s,
        %(end_at)s, %(intervals)s, %(targets)s, %(priority)s, %(market_context)s, %(response_required)s,
        %(created_at)s, %(modified_at)s, %(snapshot)s)
ON CONFLICT (event_id) DO UPDATE SET
    modification_number = EXCLUDED.modification_number,
    status = EXCLUDED.status,
    signal_name = EXCLUDED.signal_name,
    signal_type = EXCLUDED.signal_type,
    start_at = EXCLUDED.start_at,
    end_at = EXCLUDED.end_at,
    intervals = EXCLUDED.intervals,
    targets = EXCLUDED.targets,
    priority = EXCLUDED.priority,
    market_context = EXCLUDED.market_context,
    response_required = EXCLUDED.response_required,
    created_at = EXCLUDED.created_at,
    modified_at = EXCLUDED.modified_at,
    snapshot = EXCLUDED.snapshot
WHERE (EXCLUDED.modification_number, {_RANK.format(col="EXCLUDED.status")})
   >= (dr_events.modification_number, {_RANK.format(col="dr_events.status")})
"""


async def write_readings(cur, readings) -> None:
    """COPY ``readings`` (tuples in READING_COLUMNS order) into the staging table and merge them."""
    await cur.execute(READINGS_STAGING)
    async with cur.copy(READINGS_COPY) as copy:
        copy.set_types(READING_TYPES)
        for row in readings:
            await copy.write_row(row)
    await cur.execute(READINGS_MERGE)


def _json_row(row: dict) -> dict:
    return {k: Jsonb(v) if k in ("intervals", "targets", "snapshot", "resource_ids", "device_classes", "windows",
                                              "event_ids") else v
            for k, v in row.items()}


async def write_batch(conn: AsyncConnection, batch: RowBatch) -> None:
    """Run every statement the batch needs; the caller owns the transaction."""
    async with conn.cursor() as cur:
        for kind, row in batch.ven_changes:
            await cur.execute(VEN_REGISTERED if kind == "registered" else VEN_DEREGISTERED, row)
        if batch.seen:
            # In key order (as readings and responses): concurrent batches lock these rows in one order.
            await cur.executemany(VEN_SEEN, [{"ven_id": v, "at": batch.seen[v]} for v in sorted(batch.seen)])
        if batch.points:
            await write_readings(cur, batch.points.values())
        if batch.statuses:
            await write_statuses(cur, batch.statuses)
        if batch.descriptions:
            await cur.executemany(REPORT_DESCRIPTION, [batch.descriptions[k] for k in sorted(batch.descriptions)])
        if batch.responses:
            # Stream order within each (VEN, event); one lock order for every batch (no deadlocks).
            ordered = sorted(batch.responses, key=lambda r: (r["ven_id"], r["event_id"]))
            await cur.executemany(EVENT_RESPONSE, ordered)
            await cur.executemany(EARLIER_COPY, ordered)
        if batch.opt_schedules:
            await cur.executemany(OPT_SCHEDULE, [_json_row(row) for row in batch.opt_schedules.values()])
        if batch.push_failures:
            await cur.executemany(PUSH_FAILURE, [_json_row(row) for row in batch.push_failures])
        if batch.transitions:
            await cur.executemany(EVENT_TRANSITION, batch.transitions)
        if batch.events:
            await cur.executemany(DR_EVENT, [_json_row(row) for _, row in batch.events.values()])
        await write_report_requests(cur, batch.report_requests)
