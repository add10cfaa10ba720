"""Who may speak for a VEN: certificates provisioned by operators, mirrored from KV.

In ``provisioned`` enrollment a VEN is its TLS client certificate: an operator provisions the
certificate's fingerprint under a venName (``provisionVen``), only that certificate may register
under that name, and every later message must arrive over it. The provisioning bucket is the
authority on name <-> certificate, so rotating a VEN's certificate is provisioning the new one
under the same name (after deprovisioning the old one): the new certificate re-registers and
keeps the venID; the old one is refused from then on.
"""

from __future__ import annotations

import logging

import nats.js.errors
from nats.js.kv import KeyValue

from adrstack.shared.identity import ProvisionedVen, provisioning_key
from adrstack.shared.kv_mirror import KvMirror

from .state import guarded

log = logging.getLogger(__name__)

_PREFIX = "fp."


def _decode(raw: bytes) -> ProvisionedVen | None:
    try:
        return ProvisionedVen.from_bytes(raw)
    except ValueError as e:
        log.warning("unreadable provisioning record skipped: %s", e)
        return None


class Provisioning:
    """The provisioning bucket's certificate records, mirrored by a watch."""

    def __init__(self, kv: KeyValue):
        self.kv = kv
        self.mirror: KvMirror[ProvisionedVen] = KvMirror(kv, _PREFIX, _decode, name=f"{kv._name} provisioning")

    async def start(self, timeout: float = 120.0) -> None:
        await self.mirror.start(timeout)

    async def stop(self) -> None:
        await self.mirror.stop()

    async def lookup(self, fingerprint: str) -> ProvisionedVen | None:
        """The record of this certificate: from memory, else from KV (provisioned a moment ago,
        before this replica's watch saw it)."""
        key = provisioning_key(fingerprint)
        record = self.mirror.get(key[len(_PREFIX):])
        if record is not None:
            return record
        try:
            entry = await guarded(self.kv.get(key), "read the provisioning record")
        except nats.js.errors.KeyNotFoundError:
            return None
        return _decode(entry.value) if entry.value else None

    async def holds(self, fingerprint: str | None, ven_name: str) -> bool:
        """Whether this certificate is (still) provisioned for ``ven_name``."""
        if fingerprint is None:
            return False
        record = await self.lookup(fingerprint)
        return record is not None and record.ven_name == ven_name



