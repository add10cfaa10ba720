"""ReportRequestChanged facts -> the ``report_requests`` table.

Each fact carries the whole request, so a row is replaced by any newer version (``version``);
an older one (redelivered, or stored out of order by another telemetry replica) changes nothing.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from adrstack.shared.messages import ReportRequestChanged

COLUMNS = ("ven_id", "report_request_id", "report_specifier_id", "report_name", "r_ids", "granularity_seconds",
           "report_back_duration_seconds", "interval_start", "interval_end", "status", "origin", "report_to_follow",
           "created_at", "sent_at", "acknowledged_at", "cancel_requested_at", "cancel_sent_at", "cancelled_at",
           "failed_at", "failure", "version", "updated_at")

_KEY = ("ven_id", "report_request_id")

UPSERT = f"""
INSERT INTO report_requests ({", ".join(COLUMNS)})
VALUES ({", ".join(f"%({c})s" for c in COLUMNS)})
ON CONFLICT (ven_id, report_request_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in _KEY)}
WHERE report_requests.version < EXCLUDED.version
"""


def report_request_row(fact: ReportRequestChanged) -> dict[str, Any]:
    r = fact.request
    return {
        "ven_id": fact.ven_id,
        "report_request_id": r.report_request_id,
        "report_specifier_id": r.report_specifier_id,
        "report_name": r.report_name,
        "r_ids": list(r.r_ids),
        "granularity_seconds": r.granularity.total_seconds(),
        "report_back_duration_seconds": r.report_back_duration.total_seconds(),
        "interval_start": r.interval_start,
        "interval_end": r.interval_end,
        "status": r.status,
        "origin": r.origin,
        "report_to_follow": r.report_to_follow,
        "created_at": r.created_at,
        "sent_at": r.sent_at,
        "acknowledged_at": r.acknowledged_at,
        "cancel_requested_at": r.cancel_requested_at,
        "cancel_sent_at": r.cancel_sent_at,
        "cancelled_at": r.cancelled_at,
        "failed_at": r.failed_at,
        "failure": r.failure,
        "version": r.version,
        "updated_at": fact.occurred_at,
    }


def collect(rows: dict[tuple[str, str], dict[str, Any]], fact: ReportRequestChanged) -> None:
    """Keep the batch's newest version of each request (one statement never touches a row twice)."""
    row = report_request_row(fact)
    key = (row["ven_id"], row["report_request_id"])
    previous = rows.get(key)
    if previous is None or row["version"] > previous["version"]:
        rows[key] = row


async def write_report_requests(cur, rows: dict[tuple[str, str], dict[str, Any]]) -> None:
    if rows:
        # In key order, as every other multi-row write: concurrent batches lock rows in one order.
        await cur.executemany(UPSERT, [{**rows[k], "r_ids": Jsonb(rows[k]["r_ids"])} for k in sorted(rows)])
