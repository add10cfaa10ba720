"""The VEN registry in the vens KV bucket: records, the name index, delivery and report state.

Nothing about a VEN is kept in memory, so replicas and restarted gateways agree.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Awaitable, Callable, TypeVar

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from adrstack.shared import kv_keys
from adrstack.shared.messages import ReportDescription, VenRecord, utcnow

from .delivery import DeliveryRecord

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

CAS_ATTEMPTS = 5


class StoreUnavailable(RuntimeError):
    """The KV store (or JetStream) could not be reached or did not confirm a write."""


def reports_key(ven_id: str) -> str:
    """vens bucket: the VEN's registered report metadata and our pending report requests."""
    return "reports." + kv_keys.ven_key(ven_id).removeprefix("ven.")


def new_ven_id() -> str:
    return "ven-" + secrets.token_hex(6)


def new_registration_id() -> str:
    return "reg-" + secrets.token_hex(8)


class ReportRequest(BaseModel):
    report_request_id: str
    report_specifier_id: str
    granularity: timedelta
    report_back_duration: timedelta
    r_ids: list[tuple[str, str]]  # (r_id, reading_type)
    created_at: AwareDatetime = Field(default_factory=utcnow)
    sent: bool = False  # handed to the VEN in an oadrCreateReport

    def as_openadr(self) -> dict:
        return {
            "report_request_id": self.report_request_id,
            "report_specifier": {
                "report_specifier_id": self.report_specifier_id,
                "granularity": self.granularity,
                "report_back_duration": self.report_back_duration,
                "specifier_payloads": [{"r_id": r, "reading_type": t} for r, t in self.r_ids],
            },
        }


class ReportRecord(BaseModel):
    # report_specifier_id -> what the VEN declared for it
    reports: dict[str, list[ReportDescription]] = Field(default_factory=dict)
    requests: list[ReportRequest] = Field(default_factory=list)

    def unsent(self) -> list[ReportRequest]:
        return [r for r in self.requests if not r.sent]

    def description(self, report_specifier_id: str, r_id: str) -> ReportDescription | None:
        for d in self.reports.get(report_specifier_id, []):
            if d.r_id == r_id:
                return d
        for descriptions in self.reports.values():  # some VENs send a different specifier id
            for d in descriptions:
                if d.r_id == r_id:
                    return d
        return None


_TRANSIENT = (nats.errors.Error, asyncio.TimeoutError, OSError)


async def _guard(op: Awaitable[T], what: str) -> T:
    try:
        return await op
    except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyWrongLastSequenceError):
        raise
    except _TRANSIENT as e:
        raise StoreUnavailable(f"{what}: {type(e).__name__}: {e}") from e


class Registry:
    def __init__(self, kv: KeyValue):
        self.kv = kv

    async def _get(self, key: str, model: type[M]) -> tuple[M | None, int | None]:
        try:
            entry = await _guard(self.kv.get(key), f"read {key}")
        except nats.js.errors.KeyNotFoundError:  # also raised for deleted keys
            return None, None
        if entry.value is None or entry.operation in ("DEL", "PURGE"):
            return None, entry.revision
        try:
            return model.model_validate_json(entry.value), entry.revision
        except ValidationError:
            # A record we cannot read is treated as absent rather than wedging the VEN forever.
            return None, entry.revision

    async def _put_if(self, key: str, value: bytes, revision: int | None) -> int:
        """Write only if the key is still at ``revision`` (None: does not exist)."""
        if revision is None:
            return await _guard(self.kv.create(key, value), f"create {key}")
        return await _guard(self.kv.update(key, value, last=revision), f"update {key}")

    async def _mutate(self, key: str, model: type[M], change: Callable[[M | None], M | None]) -> M | None:
        """Optimistic read-modify-write (replicas may race on the same key)."""
        for _ in range(CAS_ATTEMPTS):
            current, revision = await self._get(key, model)
            new = change(current)
            if new is None:
                return current
            try:
                await self._put_if(key, new.model_dump_json().encode("utf-8"), revision)
                return new
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
        raise StoreUnavailable(f"too much contention on {key}")

    # ------------------------------------------------------------------ VENs

    async def get_ven(self, ven_id: str) -> VenRecord | None:
        record, _ = await self._get(kv_keys.ven_key(ven_id), VenRecord)
        return record

    async def ven_id_for_name(self, ven_name: str) -> str | None:
        try:
            entry = await _guard(self.kv.get(kv_keys.ven_name_key(ven_name)), "read name index")
        except nats.js.errors.KeyNotFoundError:
            return None
        return entry.value.decode("utf-8") if entry.value else None

    async def claim_name(self, ven_name: str, ven_id: str) -> str:
        """Bind ``ven_name`` to ``ven_id`` unless it is bound already; return the bound ven_id."""
        key = kv_keys.ven_name_key(ven_name)
        for _ in range(CAS_ATTEMPTS):
            existing = await self.ven_id_for_name(ven_name)
            if existing:
                return existing
            try:
                await _guard(self.kv.create(key, ven_id.encode("utf-8")), "create name index")
                return ven_id
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # another replica registered the same name just now
        raise StoreUnavailable("could not claim the VEN name")

    async def upsert_ven(self, ven_id: str, build: Callable[[VenRecord | None], VenRecord]) -> VenRecord:
        """Write ``build(current)``; concurrent registrations of one VEN converge on one record."""
        return await self._mutate(kv_keys.ven_key(ven_id), VenRecord, build)

    async def forget_ven(self, ven_id: str) -> None:
        """Remove the registration and its per-VEN state (the name index keeps the ven_id stable)."""
        for key in (kv_keys.ven_key(ven_id), kv_keys.delivery_key(ven_id), reports_key(ven_id)):
            await _guard(self.kv.delete(key), f"delete {key}")

    # ------------------------------------------------------------------ delivery

    async def get_delivery(self, ven_id: str) -> tuple[DeliveryRecord, int | None]:
        record, revision = await self._get(kv_keys.delivery_key(ven_id), DeliveryRecord)
        return record or DeliveryRecord(), revision

    async def put_delivery(self, ven_id: str, record: DeliveryRecord, revision: int | None) -> None:
        """Raises KeyWrongLastSequenceError when another poll/replica wrote first."""
        await self._put_if(kv_keys.delivery_key(ven_id), record.to_bytes(), revision)

    # ------------------------------------------------------------------ reports

    async def get_reports(self, ven_id: str) -> ReportRecord:
        record, _ = await self._get(reports_key(ven_id), ReportRecord)
        return record or ReportRecord()

    async def set_reports(self, ven_id: str, reports: dict[str, list[ReportDescription]],
                          requests: list[ReportRequest]) -> None:
        await self._mutate(reports_key(ven_id), ReportRecord,
                           lambda _old: ReportRecord(reports=reports, requests=requests))

    async def take_unsent_requests(self, ven_id: str) -> list[ReportRequest]:
        """Mark the unsent report requests as sent and return them (exactly one taker wins)."""
        taken: list[ReportRequest] = []

        def change(old: ReportRecord | None) -> ReportRecord | None:
            taken.clear()
            if old is None or not old.unsent():
                return None
            taken.extend(old.unsent())
            return old.model_copy(update={"requests": [r.model_copy(update={"sent": True}) for r in old.requests]})

        await self._mutate(reports_key(ven_id), ReportRecord, change)
        return list(taken)

    async def acknowledge_requests(self, ven_id: str, report_request_ids: set[str]) -> None:
        def change(old: ReportRecord | None) -> ReportRecord | None:
            if old is None or not any(r.report_request_id in report_request_ids for r in old.requests):
                return None
            keep = [r for r in old.requests if r.report_request_id not in report_request_ids]
            return old.model_copy(update={"requests": keep})

        await self._mutate(reports_key(ven_id), ReportRecord, change)
