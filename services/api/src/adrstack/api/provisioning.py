"""Provisioning: which certificate each VEN name holds, written to the provisioning KV bucket for
the gateway to read (it lets a certificate register under its name and no other).

Keys (adrstack.shared.identity): ``fp.<fingerprint hex>`` holds the ProvisionedVen record;
``name.<hash of the name>`` holds a :class:`NameClaim`, the name's index. A provisioning claims the
name first and then creates the record, both with KV create, so of two concurrent calls only one
can win either: the same name with two certificates, or one certificate under two names. A claim
whose record never appeared (the API died in between) is taken over, by compare-and-set, once it
is older than CLAIM_LEASE; until then it reads as a provisioning in progress.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

from adrstack.shared.identity import (
    PROVISIONING_RECORDS,
    ProvisionedVen,
    provisioning_key,
    provisioning_name_key,
)
from adrstack.shared.messages import utcnow

from .errors import ApiError
from .validation import check_fingerprint, check_ven_name

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(seconds=30)
CAS_ATTEMPTS = 5
LIST_TIMEOUT = 10.0
# What the JetStream API says when a write's expected last revision is not the key's.
_WRONG_LAST_SEQUENCE = (10071, 10164)


class NameClaim(BaseModel):
    fingerprint: str
    claimed_at: datetime


def _lost_race(e: Exception) -> bool:
    # kv.create/update raise KeyWrongLastSequenceError; kv.delete(last=) raises the plain API error.
    return isinstance(e, KeyWrongLastSequenceError) or getattr(e, "err_code", None) in _WRONG_LAST_SEQUENCE


def _fingerprint_taken(fp: str, ven_name: str) -> ApiError:
    return ApiError("conflict", f"certificate {fp} is already provisioned for the VEN {ven_name!r}",
                    "certFingerprint")


def _name_taken(ven_name: str, fp: str, in_progress: bool = False) -> ApiError:
    what = "is being provisioned" if in_progress else "is already provisioned"
    return ApiError("conflict", f"the VEN {ven_name!r} {what} with the certificate {fp}", "venName")


class Provisioning:
    def __init__(self, kv: KeyValue):
        self.kv = kv

    async def provision(self, ven_name: str, cert_fingerprint: str, by: str | None) -> ProvisionedVen:
        """Let the certificate register as ``ven_name``; the same pair again is a no-op."""
        name = check_ven_name(ven_name)
        fp = check_fingerprint(cert_fingerprint)
        record, _ = await self._record(fp)
        if record is not None:
            if record.ven_name != name:
                raise _fingerprint_taken(fp, record.ven_name)
            await self._claim(name, fp)  # re-claims the name if its claim was lost
            return record
        claimed = await self._claim(name, fp)
        record = ProvisionedVen(fingerprint=fp, ven_name=name, provisioned_at=utcnow(), provisioned_by=by)
        try:
            await self.kv.create(provisioning_key(fp), record.to_bytes())
        except KeyWrongLastSequenceError:
            # The same certificate was provisioned meanwhile, by a call that claimed another name.
            other, _ = await self._record(fp)
            if other is not None and other.ven_name == name:
                return other
            if claimed:
                await self._release(name, fp)
            raise _fingerprint_taken(fp, other.ven_name if other else "?") from None
        return record

    async def deprovision(self, cert_fingerprint: str) -> ProvisionedVen | None:
        """Remove the certificate's record (and its name's claim); None when it had none."""
        fp = check_fingerprint(cert_fingerprint)
        record, revision = await self._record(fp)
        if record is None:
            return None
        try:
            await self.kv.delete(provisioning_key(fp), last=revision)
        except Exception as e:
            if _lost_race(e):
                raise ApiError("conflict", f"the provisioning of {fp} changed meanwhile; try again",
                               "certFingerprint") from None
            raise
        await self._release(record.ven_name, fp)
        return record

    async def records(self, limit: int) -> list[ProvisionedVen]:
        """By VEN name."""
        watcher = await self.kv.watch(PROVISIONING_RECORDS, ignore_deletes=True)
        records = []
        try:
            while (entry := await watcher.updates(timeout=LIST_TIMEOUT)) is not None:
                try:
                    records.append(ProvisionedVen.from_bytes(entry.value))
                except ValidationError as e:
                    log.error("unreadable provisioning record %s: %s", entry.key, e)
        finally:
            await watcher.stop()
        records.sort(key=lambda r: (r.ven_name, r.fingerprint))
        return records[:limit]

    async def _record(self, fp: str) -> tuple[ProvisionedVen | None, int | None]:
        try:
            entry = await self.kv.get(provisioning_key(fp))
        except (KeyNotFoundError, KeyDeletedError):
            return None, None
        return ProvisionedVen.from_bytes(entry.value), entry.revision

    async def _claim(self, name: str, fp: str) -> bool:
        """Claim ``name`` for ``fp``: True if claimed now, False if it already was; CONFLICT if
        another certificate holds it."""
        key = provisioning_name_key(name)
        mine = NameClaim(fingerprint=fp, claimed_at=utcnow()).model_dump_json().encode()
        for _ in range(CAS_ATTEMPTS):
            try:
                await self.kv.create(key, mine)
                return True
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self.kv.get(key)
            except (KeyNotFoundError, KeyDeletedError):
                continue  # released meanwhile: create it again
            try:
                claim = NameClaim.model_validate_json(entry.value)
            except ValidationError:
                claim = None  # unreadable: nobody can be relying on it
            if claim is not None:
                if claim.fingerprint == fp:
                    return False
                holder, _ = await self._record(claim.fingerprint)
                if holder is not None and holder.ven_name == name:
                    raise _name_taken(name, claim.fingerprint)
                if holder is None and utcnow() - claim.claimed_at < CLAIM_LEASE:
                    raise _name_taken(name, claim.fingerprint, in_progress=True)
            # A stale claim: take it over unless someone else does first.
            try:
                await self.kv.update(key, mine, last=entry.revision)
                return True
            except KeyWrongLastSequenceError:
                continue
        raise ApiError("conflict", f"the VEN {name!r} is being provisioned concurrently; try again", "venName")

    async def _release(self, name: str, fp: str) -> None:
        """Drop ``fp``'s claim on ``name`` (if it still holds it)."""
        key = provisioning_name_key(name)
        try:
            entry = await self.kv.get(key)
            if NameClaim.model_validate_json(entry.value).fingerprint == fp:
                await self.kv.delete(key, last=entry.revision)
        except (KeyNotFoundError, KeyDeletedError):
            pass
        except Exception as e:  # a stale claim is taken over after CLAIM_LEASE; not worth failing for
            if not _lost_race(e) and not isinstance(e, ValidationError):
                raise
