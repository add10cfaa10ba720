"""TELEMETRY_STATUS facts -> ``ven_status`` (history) and ``ven_status_latest`` rows.

History is keyed like readings (VEN, time, report specifier, rID) and first wins, so a
redelivered or re-sent status writes nothing. The latest status per VEN and resource is the
newest point by its own time: a status that arrives late (an older point) never replaces it.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from adrstack.shared.messages import ReportStatus

HISTORY = """
INSERT INTO ven_status (ven_id, report_specifier_id, r_id, resource_id, at, online, manual_override,
                        load_control, received_at)
VALUES (%(ven_id)s, %(report_specifier_id)s, %(r_id)s, %(resource_id)s, %(at)s, %(online)s,
        %(manual_override)s, %(load_control)s, %(received_at)s)
ON CONFLICT (ven_id, at, report_specifier_id, r_id) DO NOTHING
"""

LATEST = """
INSERT INTO ven_status_latest AS l (ven_id, resource_key, resource_id, report_specifier_id, r_id, at, online,
                                    manual_override, load_control, received_at)
VALUES (%(ven_id)s, %(resource_key)s, %(resource_id)s, %(report_specifier_id)s, %(r_id)s, %(at)s, %(online)s,
        %(manual_override)s, %(load_control)s, %(received_at)s)
ON CONFLICT (ven_id, resource_key) DO UPDATE SET
    resource_id = EXCLUDED.resource_id,
    report_specifier_id = EXCLUDED.report_specifier_id,
    r_id = EXCLUDED.r_id,
    at = EXCLUDED.at,
    online = EXCLUDED.online,
    manual_override = EXCLUDED.manual_override,
    load_control = EXCLUDED.load_control,
    received_at = EXCLUDED.received_at
WHERE l.at < EXCLUDED.at
"""


def status_rows(fact: ReportStatus) -> list[dict[str, Any]]:
    return [{
        "ven_id": fact.ven_id,
        "report_specifier_id": fact.report_specifier_id,
        "r_id": s.r_id,
        "resource_id": s.resource_id,
        "resource_key": s.resource_id or "",
        "at": s.at,
        "online": s.online,
        "manual_override": s.manual_override,
        "load_control": s.load_control.model_dump(exclude_none=True),
        "received_at": fact.occurred_at,
    } for s in fact.statuses]


async def write_statuses(cur, rows: list[dict[str, Any]]) -> None:
    """In key order (as readings): concurrent batches lock the same rows in one order."""
    rows = [{**row, "load_control": Jsonb(row["load_control"])} for row in rows]
    await cur.executemany(HISTORY, sorted(rows, key=lambda r: (r["ven_id"], r["at"], r["report_specifier_id"],
                                                               r["r_id"])))
    await cur.executemany(LATEST, sorted(rows, key=lambda r: (r["ven_id"], r["resource_key"], r["at"])))
