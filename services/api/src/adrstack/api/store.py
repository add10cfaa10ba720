"""Reads from Postgres (the tables telemetry fills). The API never writes them."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from adrstack.shared.tables import (
    DrEventRow,
    EventResponseRow,
    OptScheduleRow,
    ReadingRow,
    ReportDescriptionRow,
    Ven,
)


class Store:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    def _session(self) -> AsyncSession:
        return AsyncSession(self.engine, expire_on_commit=False)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("select 1"))

    async def vens(self, limit: int) -> list[Ven]:
        async with self._session() as s:
            rows = await s.execute(select(Ven).order_by(Ven.ven_name).limit(limit))
            return list(rows.scalars())

    async def opt_schedules(self, ven_id: str | None, event_id: str | None, include_cancelled: bool,
                            limit: int) -> list[OptScheduleRow]:
        """Most recently sent first."""
        query = select(OptScheduleRow)
        if ven_id is not None:
            query = query.where(OptScheduleRow.ven_id == ven_id)
        if event_id is not None:
            query = query.where(OptScheduleRow.event_id == event_id)
        if not include_cancelled:
            query = query.where(OptScheduleRow.cancelled_at.is_(None))
        query = query.order_by(OptScheduleRow.sent_at.desc(), OptScheduleRow.ven_id, OptScheduleRow.opt_id)
        async with self._session() as s:
            return list((await s.execute(query.limit(limit))).scalars())

    async def ven(self, ven_id: str) -> Ven | None:
        async with self._session() as s:
            return await s.get(Ven, ven_id)

    async def events(self, limit: int) -> list[DrEventRow]:
        """Most recently created first."""
        async with self._session() as s:
            rows = await s.execute(
                select(DrEventRow)
                .order_by(DrEventRow.created_at.desc(), DrEventRow.event_id)
                .limit(limit)
            )
            return list(rows.scalars())

    async def event(self, event_id: str) -> DrEventRow | None:
        async with self._session() as s:
            return await s.get(DrEventRow, event_id)

    async def responses(self, event_ids: list[str]) -> dict[str, list[EventResponseRow]]:
        """Every opt response per event, oldest first (a VEN may answer each modification)."""
        out: dict[str, list[EventResponseRow]] = defaultdict(list)
        if not event_ids:
            return out
        async with self._session() as s:
            rows = await s.execute(
                select(EventResponseRow)
                .where(EventResponseRow.event_id.in_(event_ids))
                .order_by(EventResponseRow.responded_at, EventResponseRow.ven_id)
            )
            for row in rows.scalars():
                out[row.event_id].append(row)
        return out

    async def readings(
        self,
        ven_id: str,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[ReadingRow]:
        """Newest first; ``since`` inclusive, ``until`` exclusive."""
        query = select(ReadingRow).where(ReadingRow.ven_id == ven_id)
        if since is not None:
            query = query.where(ReadingRow.at >= since)
        if until is not None:
            query = query.where(ReadingRow.at < until)
        query = query.order_by(ReadingRow.at.desc(), ReadingRow.r_id).limit(limit)
        async with self._session() as s:
            rows = await s.execute(query)
            return list(rows.scalars())

    async def known_vens(self, ven_ids: list[str]) -> set[str]:
        """Which of these VENs the VTN has registered (deregistered ones too: a VEN keeps its id)."""
        if not ven_ids:
            return set()
        async with self._session() as s:
            rows = await s.execute(select(Ven.ven_id).where(Ven.ven_id.in_(ven_ids)))
            return set(rows.scalars())

    async def vens_by_resource(self, resource_ids: list[str]) -> dict[str, set[str]]:
        """resource id -> the registered VENs that declared a report on it (report_descriptions)."""
        out: dict[str, set[str]] = defaultdict(set)
        if not resource_ids:
            return out
        query = (
            select(ReportDescriptionRow.resource_id, ReportDescriptionRow.ven_id)
            .join(Ven, Ven.ven_id == ReportDescriptionRow.ven_id)
            .where(ReportDescriptionRow.resource_id.in_(resource_ids), Ven.deregistered_at.is_(None))
            .distinct()
        )
        async with self._session() as s:
            for resource_id, ven_id in await s.execute(query):
                out[resource_id].add(ven_id)
        return out
