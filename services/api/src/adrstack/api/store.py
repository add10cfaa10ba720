"""Reads from Postgres (the tables telemetry fills). The API never writes them."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from adrstack.shared.programs import OCCURRENCE_ID_SQL
from adrstack.shared.tables import (
    DrEventRow,
    EventOptStateRow,
    EventResponseRow,
    OptScheduleRow,
    PushFailureRow,
    ReportDescriptionRow,
    ReportRequestRow,
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

    async def push_failures(self, ven_id: str | None, limit: int) -> list[PushFailureRow]:
        """Newest first."""
        query = select(PushFailureRow)
        if ven_id is not None:
            query = query.where(PushFailureRow.ven_id == ven_id)
        query = query.order_by(PushFailureRow.occurred_at.desc(), PushFailureRow.id).limit(limit)
        async with self._session() as s:
            return list((await s.execute(query)).scalars())

    async def report_requests(self, ven_id: str, statuses: list[str] | None, limit: int) -> list[ReportRequestRow]:
        """Most recently created first."""
        query = select(ReportRequestRow).where(ReportRequestRow.ven_id == ven_id)
        if statuses:
            query = query.where(ReportRequestRow.status.in_(statuses))
        query = query.order_by(ReportRequestRow.created_at.desc(), ReportRequestRow.report_request_id).limit(limit)
        async with self._session() as s:
            return list((await s.execute(query)).scalars())

    async def ven(self, ven_id: str) -> Ven | None:
        async with self._session() as s:
            return await s.get(Ven, ven_id)

    async def events(self, limit: int, *, statuses: list[str] | None = None, since: datetime | None = None,
                     until: datetime | None = None, ven_id: str | None = None,
                     after: DrEventRow | None = None, program_id: str | None = None,
                     group_id: str | None = None) -> list[DrEventRow]:
        """Most recently created first; ``since``/``until`` keep events whose time overlaps them,
        ``ven_id`` those that name the VEN among their targets, ``after`` continues a page."""
        query = select(DrEventRow)
        if statuses:
            query = query.where(DrEventRow.status.in_(statuses))
        if since is not None:
            query = query.where(DrEventRow.end_at.is_(None) | (DrEventRow.end_at > since))
        if until is not None:
            query = query.where(DrEventRow.start_at < until)
        if ven_id is not None:
            query = query.where(DrEventRow.targets["ven_ids"].contains([ven_id]))
        if group_id is not None:
            query = query.where(DrEventRow.targets["group_ids"].contains([group_id]))
        if program_id is not None:  # the scheduler names a program's events prg-<program>-<yyyymmdd>[r<n>]
            query = query.where(DrEventRow.event_id.regexp_match(OCCURRENCE_ID_SQL.format(program=re.escape(program_id))))
        if after is not None:  # the order below, continued past ``after``
            query = query.where((DrEventRow.created_at < after.created_at)
                                | ((DrEventRow.created_at == after.created_at) & (DrEventRow.event_id > after.event_id)))
        query = query.order_by(DrEventRow.created_at.desc(), DrEventRow.event_id).limit(limit)
        async with self._session() as s:
            return list((await s.execute(query)).scalars())

    async def events_between(self, since: datetime, until: datetime, exclude: str | None = None,
                             limit: int = 5000) -> list[DrEventRow]:
        """Events whose time overlaps [since, until) (open-ended ones from their start), any status."""
        query = select(DrEventRow).where(DrEventRow.start_at < until,
                                         DrEventRow.end_at.is_(None) | (DrEventRow.end_at > since))
        if exclude is not None:
            query = query.where(DrEventRow.event_id != exclude)
        async with self._session() as s:
            return list((await s.execute(query.order_by(DrEventRow.start_at).limit(limit))).scalars())

    async def event(self, event_id: str) -> DrEventRow | None:
        async with self._session() as s:
            return await s.get(DrEventRow, event_id)

    async def responses(self, event_ids: list[str]) -> dict[str, list[EventResponseRow]]:
        """The opt history per event, oldest first: one row per change of a VEN's answer or answer
        to a new modification (re-sent copies are not stored)."""
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

    async def opt_states(self, event_ids: list[str]) -> dict[str, list[EventOptStateRow]]:
        """The current answer of each VEN that answered, per event, by VEN id."""
        out: dict[str, list[EventOptStateRow]] = defaultdict(list)
        if not event_ids:
            return out
        async with self._session() as s:
            rows = await s.execute(
                select(EventOptStateRow)
                .where(EventOptStateRow.event_id.in_(event_ids))
                .order_by(EventOptStateRow.event_id, EventOptStateRow.ven_id)
            )
            for row in rows.scalars():
                out[row.event_id].append(row)
        return out

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
