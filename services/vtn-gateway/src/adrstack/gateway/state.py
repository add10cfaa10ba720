"""The gateway's VEN state: in-memory mirrors of the vens KV bucket, written with compare-and-set.

What a poll needs (the VEN's registration, what it was last told, its pending report
requests) is read from memory; KV is written only when something changed, and the write is
a compare-and-set on the revision the mirror holds, so replicas (and the same replica's
concurrent requests) never overwrite each other. A replica sees another's writes within
the watch latency; a lookup that misses in memory asks KV once, so a VEN that registered
through another replica a moment ago is not told to register again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from typing import Awaitable, Callable, Generic, Literal, TypeVar

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from adrstack.shared import kv_keys
from adrstack.shared.kv_mirror import KvMirror
from adrstack.shared.messages import OptSchedule, ReportDescription, VenRecord, utcnow

from .delivery import EMPTY_DELIVERY, DeliveryRecord

log = logging.getLogger(__name__)

T = TypeVar("T")
CAS_ATTEMPTS = 5


class StoreUnavailable(RuntimeError):
    """KV (or JetStream) could not be reached or did not confirm a write."""


_TRANSIENT = (nats.errors.Error, asyncio.TimeoutError, OSError)


async def guarded(op: Awaitable[T], what: str) -> T:
    """Await a KV operation; a transport failure becomes StoreUnavailable (answered 469)."""
    try:
        return await op
    except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyWrongLastSequenceError):
        raise
    except _TRANSIENT as e:
        raise StoreUnavailable(f"{what}: {type(e).__name__}: {e}") from e


def new_ven_id() -> str:
    return "ven-" + secrets.token_hex(6)


def new_registration_id() -> str:
    return "reg-" + secrets.token_hex(8)


# --------------------------------------------------------------------------- records


class Ven:
    """A registered VEN as the gateway holds it: a VenRecord without pydantic's per-object cost
    (the mirror holds one per VEN; at 100,000 VENs that is the gateway's memory)."""

    __slots__ = ("ven_id", "ven_name", "registration_id", "registered_at", "profile_name", "transport_name",
                 "transport_address", "http_pull_model", "report_only", "fingerprint", "pending_action",
                 "seen_window")

    def __init__(self, record: VenRecord):
        self.ven_id = record.ven_id
        self.ven_name = record.ven_name
        self.registration_id = record.registration_id
        self.registered_at = record.registered_at
        # Interned: the same few values for every VEN.
        self.profile_name = _common(record.profile_name)
        self.transport_name = _common(record.transport_name)
        self.transport_address = record.transport_address
        self.http_pull_model = record.http_pull_model
        self.report_only = record.report_only
        self.fingerprint = record.fingerprint
        self.pending_action = record.pending_action
        self.seen_window = 0  # heartbeat rate limit, process-local on purpose (see handlers.heartbeat)

    def record(self) -> VenRecord:
        return VenRecord(ven_id=self.ven_id, ven_name=self.ven_name, registration_id=self.registration_id,
                         registered_at=self.registered_at, profile_name=self.profile_name,
                         transport_name=self.transport_name, transport_address=self.transport_address,
                         http_pull_model=self.http_pull_model, report_only=self.report_only,
                         fingerprint=self.fingerprint, pending_action=self.pending_action)


_COMMON: dict[str, str] = {}


def _common(value: str) -> str:
    if len(_COMMON) < 64:
        return _COMMON.setdefault(value, value)
    return _COMMON.get(value, value)


def _decode_ven(raw: bytes) -> Ven | None:
    try:
        return Ven(VenRecord.model_validate_json(raw))
    except ValidationError:
        return None


def _decode_delivery(raw: bytes) -> DeliveryRecord | None:
    try:
        return DeliveryRecord.from_json(raw)
    except (ValueError, TypeError, KeyError):
        return None


class ReportRequestState(BaseModel):
    """A report request we made of a VEN (oadrCreateReport), and whether it went out."""

    report_request_id: str
    report_specifier_id: str
    granularity: timedelta
    report_back_duration: timedelta
    r_ids: list[tuple[str, str]]  # (rID, readingType)
    created_at: AwareDatetime = Field(default_factory=utcnow)
    sent: bool = False
    # What follows tracks the request through its exchanges with the VEN (report_requests.py);
    # a record written before these fields existed reads as "sent" or "queued".
    origin: Literal["automatic", "operator"] = "automatic"
    interval_start: AwareDatetime | None = None  # reportInterval
    interval_duration: timedelta | None = None
    sent_at: AwareDatetime | None = None
    create_request_id: str | None = None  # the requestID of the oadrCreateReport that carried it
    acknowledged_at: AwareDatetime | None = None
    cancel_requested_at: AwareDatetime | None = None
    report_to_follow: bool = False
    cancel_request_id: str | None = None  # the requestID of the oadrCancelReport, once sent
    cancel_sent_at: AwareDatetime | None = None
    cancel_polled_at: AwareDatetime | None = None  # the cancel went out on a poll (not only piggybacked)
    cancelled_at: AwareDatetime | None = None
    final_update_at: AwareDatetime | None = None  # the one update accepted after a reportToFollow cancel
    failed_at: AwareDatetime | None = None
    failure: str | None = None
    version: int = 0

    @property
    def status(self) -> str:
        if self.failed_at is not None:
            return "failed"
        if self.cancelled_at is not None:
            return "cancelled"
        if self.cancel_requested_at is not None:
            return "cancelling"
        if self.acknowledged_at is not None:
            return "acknowledged"
        return "sent" if self.sent else "queued"

    @property
    def finished(self) -> bool:
        return self.failed_at is not None or self.cancelled_at is not None

    @property
    def cancel_due(self) -> bool:
        """Delivered, cancelled by the operator, not answered by the VEN, and not sent on a poll yet
        (a cancel piggybacked in oadrUpdatedReport goes out on the next poll too: openleadr VENs
        ignore piggybacked cancels)."""
        return (self.sent and self.cancel_requested_at is not None and self.cancel_polled_at is None
                and not self.finished)

    @property
    def cancel_unsent(self) -> bool:
        """``cancel_due``, and not told in any way yet."""
        return self.cancel_due and self.cancel_sent_at is None


class SourceRequest(BaseModel):
    """A VEN's request for the VTN's own report (oadrCreateReport, reportSpecifierID METADATA)."""

    report_request_id: str
    # The VTN's oadrRegisterReport answering it went out: no longer pending (one-shot).
    delivered: bool = False


# A VEN's requests of the VTN's reports kept per VEN: each one-shot, so only a hostile VEN has more.
MAX_SOURCE_REQUESTS = 16


class ReportRecord(BaseModel):
    """vens bucket, ``reports.<ven_id>``: what the VEN declared, and our requests to it."""

    reports: dict[str, list[ReportDescription]] = Field(default_factory=dict)  # reportSpecifierID -> points
    requests: list[ReportRequestState] = Field(default_factory=list)
    # The VTN as report source: the VEN's requests for the VTN's METADATA, and whether the VTN's
    # own oadrRegisterReport is due on the next poll (after the VEN registered its reports).
    source_requests: list[SourceRequest] = Field(default_factory=list)
    metadata_due: bool = False

    def unsent(self) -> list[ReportRequestState]:
        return [r for r in self.requests if not r.sent and not r.finished]

    def request(self, report_request_id: str) -> ReportRequestState | None:
        for r in self.requests:
            if r.report_request_id == report_request_id:
                return r
        return None

    def cancels_due(self) -> list[ReportRequestState]:
        """Delivered requests whose cancellation has not gone out to the VEN yet."""
        return [r for r in self.requests if r.cancel_due]

    def cancels_unsent(self) -> list[ReportRequestState]:
        return [r for r in self.requests if r.cancel_unsent]

    def accepts_data(self, report_request_id: str) -> bool:
        """Rule 304: data only for a request the VTN made of this VEN and still holds."""
        for r in self.requests:
            if r.report_request_id == report_request_id:
                return True
        return False

    def pending_source(self) -> list[str]:
        """oadrPendingReports of the VTN as report source: requests not yet answered."""
        return [r.report_request_id for r in self.source_requests if not r.delivered]

    def knows_source(self, report_request_id: str) -> bool:
        return any(r.report_request_id == report_request_id for r in self.source_requests)

    def metadata_to_send(self) -> bool:
        return self.metadata_due or any(not r.delivered for r in self.source_requests)

    def description(self, report_specifier_id: str, r_id: str) -> ReportDescription | None:
        for d in self.reports.get(report_specifier_id, ()):
            if d.r_id == r_id:
                return d
        for descriptions in self.reports.values():  # some VENs send a different specifier id
            for d in descriptions:
                if d.r_id == r_id:
                    return d
        return None


def _decode_reports(raw: bytes) -> ReportRecord | None:
    try:
        return ReportRecord.model_validate_json(raw)
    except ValidationError:
        return None


class OptBook(BaseModel):
    """vens bucket, ``opts.<ven_id>``: the VEN's current opt schedules (EiOpt) by optID."""

    opts: dict[str, OptSchedule] = Field(default_factory=dict)

    def for_event(self, event_id: str) -> OptSchedule | None:
        """The VEN's latest opt qualifying this event (rule 206: it overrides oadrCreatedEvent)."""
        found = [o for o in self.opts.values() if o.event_id == event_id]
        return max(found, key=lambda o: o.occurred_at) if found else None


def _decode_opts(raw: bytes) -> OptBook | None:
    try:
        return OptBook.model_validate_json(raw)
    except ValidationError:
        return None


_NO_OPTS = OptBook()


# --------------------------------------------------------------------------- the store


class Bucket(Generic[T]):
    """One kind of record in the vens bucket: its mirror and its compare-and-set writes."""

    def __init__(self, kv: KeyValue, prefix: str, decode: Callable[[bytes], T | None],
                 encode: Callable[[T], bytes], name: str, on_change=None):
        self.kv = kv
        self.prefix = prefix
        self.mirror: KvMirror[T] = KvMirror(kv, prefix, decode, name=f"{kv._name} {name}", on_change=on_change)
        self._decode = decode
        self._encode = encode

    def get(self, key: str) -> T | None:
        return self.mirror.get(key)

    async def fetch(self, key: str) -> tuple[T | None, int | None]:
        """Read one key from KV itself (the mirror may not have seen the latest write yet)."""
        try:
            entry = await guarded(self.kv.get(self.prefix + key), f"read {self.prefix}{key}")
        except nats.js.errors.KeyNotFoundError:  # also raised for deleted keys
            return None, None
        value = self._decode(entry.value) if entry.value else None
        if value is not None:
            self.mirror.noted(key, value, entry.revision)
        return value, entry.revision

    async def mutate(self, key: str, change: Callable[[T | None], T | None]) -> T | None:
        """Write ``change(current)`` unless it returns None; retried on a concurrent write.
        Returns the value now stored."""
        current, revision = self.mirror.entry(key)
        for _ in range(CAS_ATTEMPTS):
            new = change(current)
            if new is None:
                return current
            data = self._encode(new)
            try:
                if current is None:
                    revision = await guarded(self.kv.create(self.prefix + key, data), f"create {self.prefix}{key}")
                else:
                    revision = await guarded(self.kv.update(self.prefix + key, data, last=revision),
                                            f"update {self.prefix}{key}")
            except nats.js.errors.KeyWrongLastSequenceError:
                current, revision = await self.fetch(key)
                continue
            self.mirror.noted(key, new, revision)
            return new
        raise StoreUnavailable(f"too much contention on {self.prefix}{key}")

    async def delete(self, key: str) -> None:
        _, revision = self.mirror.entry(key)
        await guarded(self.kv.delete(self.prefix + key), f"delete {self.prefix}{key}")
        # Tombstoned locally until the watch echoes the delete.
        self.mirror.noted(key, None, (revision or 0) + 1)


def _encode_pydantic(value: BaseModel) -> bytes:
    return value.model_dump_json().encode("utf-8")


class VenStore:
    """Every per-VEN record of the vens bucket, mirrored."""

    def __init__(self, kv: KeyValue, on_reports_change=None):
        self.kv = kv
        self.vens: Bucket[Ven] = Bucket(kv, kv_keys.VEN_PREFIX, _decode_ven, lambda v: _encode_pydantic(v.record()),
                                        "vens", on_change=_keep_heartbeat_window)
        self.deliveries: Bucket[DeliveryRecord] = Bucket(kv, kv_keys.DELIVERY_PREFIX, _decode_delivery,
                                                         DeliveryRecord.to_bytes, "deliveries")
        # on_reports_change: the event book's resource-id index (targeting) follows the reports.
        self.reports: Bucket[ReportRecord] = Bucket(kv, kv_keys.REPORTS_PREFIX, _decode_reports, _encode_pydantic,
                                                    "reports", on_change=on_reports_change)
        self.opts: Bucket[OptBook] = Bucket(kv, kv_keys.OPTS_PREFIX, _decode_opts, _encode_pydantic, "opts")
        self._buckets = (self.vens, self.deliveries, self.reports, self.opts)

    async def start(self, timeout: float = 120.0) -> None:
        await asyncio.gather(*(b.mirror.start(timeout) for b in self._buckets))

    async def stop(self) -> None:
        await asyncio.gather(*(b.mirror.stop() for b in self._buckets))

    # ------------------------------------------------------------------ VENs

    def ven(self, ven_id: str) -> Ven | None:
        return self.vens.get(ven_id)

    async def find_ven(self, ven_id: str) -> Ven | None:
        """The VEN from memory, else from KV (registered through another replica a moment ago)."""
        ven = self.vens.get(ven_id)
        if ven is None:
            ven, _ = await self.vens.fetch(ven_id)
        return ven

    def ven_by_registration(self, registration_id: str) -> Ven | None:
        for _, ven in self.vens.mirror.items():
            if ven.registration_id == registration_id:
                return ven
        return None

    async def ven_id_for_name(self, ven_name: str) -> str | None:
        try:
            entry = await guarded(self.kv.get(kv_keys.ven_name_key(ven_name)), "read the name index")
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
                await guarded(self.kv.create(key, ven_id.encode("utf-8")), "create the name index")
                return ven_id
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # another replica registered the same name just now
        raise StoreUnavailable("could not claim the VEN name")

    async def put_ven(self, ven_id: str, build: Callable[[Ven | None], VenRecord | None]) -> Ven | None:
        return await self.vens.mutate(ven_id, lambda current: _as_ven(build(current)))

    async def forget_ven(self, ven_id: str) -> None:
        """Remove the registration and its per-VEN state (the name index keeps the ven_id stable)."""
        for bucket in self._buckets:
            await bucket.delete(ven_id)

    # ------------------------------------------------------------------ opt schedules

    def opt_book(self, ven_id: str) -> OptBook:
        return self.opts.get(ven_id) or _NO_OPTS

    # ------------------------------------------------------------------ delivery

    def delivery(self, ven_id: str) -> DeliveryRecord:
        return self.deliveries.get(ven_id) or _EMPTY_DELIVERY

    # ------------------------------------------------------------------ reports

    def report_record(self, ven_id: str) -> ReportRecord:
        return self.reports.get(ven_id) or _EMPTY_REPORTS

    async def take_unsent_requests(self, ven_id: str, create_request_id: str | None = None
                                   ) -> list[ReportRequestState]:
        """Mark the unsent report requests as sent (in the oadrCreateReport ``create_request_id``)
        and return them as now stored (exactly one taker wins)."""
        now = utcnow()

        def sent(r: ReportRequestState) -> ReportRequestState:
            return r.model_copy(update={"sent": True, "sent_at": now, "create_request_id": create_request_id,
                                        "version": r.version + 1})

        return await self.change_requests(ven_id, lambda r: sent(r) if not r.sent and not r.finished else None)

    async def acknowledge_requests(self, ven_id: str, report_request_ids: set[str]) -> list[ReportRequestState]:
        """The VEN listed these among its pendingReports: they are acknowledged (kept, so later
        steps, a cancellation or its data, can name them)."""
        now = utcnow()

        def acknowledged(r: ReportRequestState) -> ReportRequestState | None:
            if r.report_request_id not in report_request_ids or r.acknowledged_at is not None or r.finished:
                return None
            return r.model_copy(update={"acknowledged_at": now, "sent": True, "version": r.version + 1})

        return await self.change_requests(ven_id, acknowledged)

    async def change_requests(self, ven_id: str, change: Callable[[ReportRequestState], ReportRequestState | None],
                              add: list[ReportRequestState] = ()) -> list[ReportRequestState]:
        """Apply ``change`` to each of the VEN's report requests (None: unchanged) and append
        ``add``, in one compare-and-set; return the requests that changed or were added, as stored."""
        changed: list[ReportRequestState] = []

        def update(old: ReportRecord | None) -> ReportRecord | None:
            changed.clear()
            if old is None:
                return None
            requests = []
            for r in old.requests:
                new = change(r)
                if new is not None:
                    changed.append(new)
                requests.append(new or r)
            changed.extend(add)
            if not changed:
                return None
            requests += add
            if add:
                requests = _without_oldest_finished(requests)
            return old.model_copy(update={"requests": requests})

        await self.reports.mutate(ven_id, update)
        return list(changed)

    # ------------------------------------------------------------------ the VTN as report source

    async def accept_source_requests(self, ven_id: str, report_request_ids: list[str]) -> ReportRecord:
        """Record the VEN's requests for the VTN's METADATA (again pending if asked again)."""
        def change(old: ReportRecord | None) -> ReportRecord:
            old = old or ReportRecord()
            kept = [r for r in old.source_requests if r.report_request_id not in report_request_ids]
            added = [SourceRequest(report_request_id=i) for i in dict.fromkeys(report_request_ids)]
            return old.model_copy(update={"source_requests": (kept + added)[-MAX_SOURCE_REQUESTS:]})

        return await self.reports.mutate(ven_id, change)

    async def cancel_source_requests(self, ven_id: str, report_request_ids: set[str]) -> ReportRecord:
        def change(old: ReportRecord | None) -> ReportRecord | None:
            if old is None or not any(old.knows_source(i) for i in report_request_ids):
                return None
            return old.model_copy(update={"source_requests": [
                r for r in old.source_requests if r.report_request_id not in report_request_ids]})

        return await self.reports.mutate(ven_id, change) or _EMPTY_REPORTS

    async def restore_metadata(self, ven_id: str, answering: str | None) -> None:
        """Undo ``take_metadata``: the registration did not reach the VEN (a failed push)."""
        def change(old: ReportRecord | None) -> ReportRecord | None:
            if old is None:
                return None
            return old.model_copy(update={"metadata_due": True, "source_requests": [
                r.model_copy(update={"delivered": False}) if r.report_request_id == answering else r
                for r in old.source_requests]})

        await self.reports.mutate(ven_id, change)

    async def take_metadata(self, ven_id: str) -> list[str | None]:
        """Take the VTN's due oadrRegisterReport (exactly one taker wins): [] when none is due,
        else [the pending reportRequestID it answers, or None when unsolicited]. One registration
        answers every reason it was due, but names one request; other pending ones go on later polls."""
        taken: list[str | None] = []

        def change(old: ReportRecord | None) -> ReportRecord | None:
            taken.clear()
            if old is None or not old.metadata_to_send():
                return None
            pending = old.pending_source()
            answering = pending[0] if pending else None
            taken.append(answering)
            return old.model_copy(update={"metadata_due": False, "source_requests": [
                r.model_copy(update={"delivered": True}) if r.report_request_id == answering else r
                for r in old.source_requests]})

        await self.reports.mutate(ven_id, change)
        return list(taken)


# Finished (cancelled, failed) requests kept in KV: their history is in Postgres; KV only has to
# recognise a late answer or a final update naming one.
MAX_FINISHED_REQUESTS = 20


def _without_oldest_finished(requests: list[ReportRequestState]) -> list[ReportRequestState]:
    finished = sorted((r for r in requests if r.finished), key=lambda r: r.cancelled_at or r.failed_at)
    drop = {id(r) for r in finished[:max(0, len(finished) - MAX_FINISHED_REQUESTS)]}
    return [r for r in requests if id(r) not in drop]


_EMPTY_DELIVERY = EMPTY_DELIVERY
_EMPTY_REPORTS = ReportRecord()


def _keep_heartbeat_window(key: str | None, old: Ven | None, new: Ven | None) -> None:
    # A changed record is a new object: carry the heartbeat rate limit over, or every
    # registration or registration step would cost the VEN an extra heartbeat.
    if old is not None and new is not None:
        new.seen_window = old.seen_window


def _as_ven(record: VenRecord | None) -> Ven | None:
    return None if record is None else Ven(record)
