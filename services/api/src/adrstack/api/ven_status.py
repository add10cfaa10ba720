"""TELEMETRY_STATUS reads: the latest status of listed VENs (one query for a page of VENs) and one
VEN's status history."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared.tables import VenStatusLatestRow, VenStatusRow

from .store import Store


async def latest(store: Store, ven_ids: list[str]) -> dict[str, list[VenStatusLatestRow]]:
    """ven_id -> its newest status per resource."""
    if not ven_ids:
        return {}
    query = select(VenStatusLatestRow).where(VenStatusLatestRow.ven_id.in_(ven_ids))
    out: dict[str, list[VenStatusLatestRow]] = defaultdict(list)
    async with AsyncSession(store.engine) as s:
        for row in (await s.execute(query)).scalars():
            out[row.ven_id].append(row)
    return out


async def history(store: Store, ven_id: str, since: datetime | None, until: datetime | None,
                  resource_id: str | None, limit: int) -> list[VenStatusRow]:
    """Newest first (the primary key's order: one index range scan)."""
    query = select(VenStatusRow).where(VenStatusRow.ven_id == ven_id)
    if since is not None:
        query = query.where(VenStatusRow.at >= since)
    if until is not None:
        query = query.where(VenStatusRow.at < until)
    if resource_id is not None:
        query = query.where(VenStatusRow.resource_id == resource_id)
    query = query.order_by(VenStatusRow.at.desc(), VenStatusRow.report_specifier_id, VenStatusRow.r_id).limit(limit)
    async with AsyncSession(store.engine) as s:
        return list((await s.execute(query)).scalars())
