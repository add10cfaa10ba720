"""VEN identity: the 2.0b certificate fingerprint and the provisioning record that binds one to a
VEN name before the VEN may register.

The fingerprint is the 2.0b form: the last 10 bytes of the SHA-256 of the certificate's DER,
upper-case hex, colon-separated (``AB:CD:...``, 29 characters). Provisioning records live in the
``openadr-provisioning`` KV bucket under the fingerprint without colons; the api writes them
(``provisionVen``), the gateway reads them at registration.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

FINGERPRINT_BYTES = 10
_HEX = re.compile(r"[0-9A-F]+")


class InvalidFingerprint(ValueError):
    pass


def fingerprint_of_der(der: bytes) -> str:
    """The 2.0b fingerprint of a DER certificate."""
    tail = hashlib.sha256(der).digest()[-FINGERPRINT_BYTES:]
    return ":".join(f"{b:02X}" for b in tail)


def normalize_fingerprint(value: str) -> str:
    """An operator's fingerprint in the 2.0b form. Accepts either case, with or without colons,
    and a whole SHA-256 (32 bytes, of which the last 10 are the fingerprint)."""
    if not isinstance(value, str):
        raise InvalidFingerprint("a certificate fingerprint is a string")
    digits = value.strip().replace(":", "").upper()
    if not _HEX.fullmatch(digits) or len(digits) not in (2 * FINGERPRINT_BYTES, 64):
        raise InvalidFingerprint("a certificate fingerprint is the last 10 bytes of the certificate's "
                                 "SHA-256 as colon-separated hex, e.g. 7A:1F:...:C3 (29 characters)")
    digits = digits[-2 * FINGERPRINT_BYTES:]
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def provisioning_key(fingerprint: str) -> str:
    """``openadr-provisioning``: the record of the VEN that holds this certificate."""
    return "fp." + normalize_fingerprint(fingerprint).replace(":", "")


PROVISIONING_RECORDS = "fp.>"


def provisioning_name_key(ven_name: str) -> str:
    """``openadr-provisioning``: the api's index of provisioned names (which fingerprint holds
    ``ven_name``), so that one name holds one certificate. A name may hold any character, so it is
    hashed. Readers of the records watch ``PROVISIONING_RECORDS`` and never see these keys."""
    return "name." + hashlib.sha256(ven_name.encode("utf-8")).hexdigest()[:40]


class ProvisionedVen(BaseModel):
    """An operator's statement: the VEN called ``ven_name`` holds the certificate ``fingerprint``.
    The gateway lets that certificate register under that name (and no other)."""

    model_config = ConfigDict(extra="ignore")

    schema_version: int = 1
    fingerprint: str
    ven_name: str = Field(min_length=1, max_length=256)
    provisioned_at: datetime
    provisioned_by: str | None = None  # the API token's name, for the audit trail

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> "ProvisionedVen":
        return cls.model_validate_json(data)
