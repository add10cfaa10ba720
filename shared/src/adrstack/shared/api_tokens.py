"""Operators' API tokens: roles, the token format, and what is done with the ``api_tokens`` table.

A token reads ``adrs_<id>_<secret>``. ``<id>`` (12 hex digits) names its row and may be shown and
logged; ``<secret>`` (256 random bits, URL-safe base64) is shown once, at creation, and only its
SHA-256 is stored. The secret is random, so a plain hash is enough (there is no password to
guess from it); it is compared in constant time. ``adrstack token`` (the runtime) and the api use
these same functions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from .tables import ApiToken

TOKEN_PREFIX = "adrs"
_ID = "[0-9a-f]{12}"
_TOKEN = re.compile(rf"{TOKEN_PREFIX}_(?P<id>{_ID})_(?P<secret>[A-Za-z0-9_-]{{43}})")
NAME_MAX_LENGTH = 100
# last_used_at is written at most this often per token, so a busy token costs no write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Role(str, Enum):
    """What a token may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"  # queries and subscriptions
    OPERATOR = "operator"  # and event, program and VEN mutations
    ADMIN = "admin"  # and provisioning and tokens

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


class InvalidTokenName(ValueError):
    pass


@dataclass(frozen=True)
class IssuedToken:
    token: str  # the only time the secret exists outside the caller's hands
    row: ApiToken


def parse_token(text: object) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    if not isinstance(text, str):
        return None
    m = _TOKEN.fullmatch(text.strip())
    return (m["id"], m["secret"]) if m else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, secret_sha256: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_sha256)


def check_name(name: str | None) -> str | None:
    """A token's name as stored: trimmed, printable, at most NAME_MAX_LENGTH characters."""
    if name is None:
        return None
    name = name.strip()
    if not name:
        raise InvalidTokenName("a token name must not be empty")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidTokenName(f"a token name has at most {NAME_MAX_LENGTH} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidTokenName("a token name must not contain control characters")
    return name


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _session(engine: AsyncEngine) -> AsyncSession:
    return AsyncSession(engine, expire_on_commit=False)


async def create_token(engine: AsyncEngine, role: Role, name: str | None = None) -> IssuedToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiToken(id=token_id, name=check_name(name), role=Role(role).value,
                   secret_sha256=hash_secret(secret), created_at=_utcnow())
    async with _session(engine) as s:
        s.add(row)
        await s.commit()
    return IssuedToken(token=f"{TOKEN_PREFIX}_{token_id}_{secret}", row=row)


async def list_tokens(engine: AsyncEngine, limit: int | None = None) -> list[ApiToken]:
    """Oldest first, revoked ones included."""
    query = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
    if limit is not None:
        query = query.limit(limit)
    async with _session(engine) as s:
        return list((await s.execute(query)).scalars())


async def revoke_token(engine: AsyncEngine, token_id: str) -> ApiToken | None:
    """Revoke a token (a revoked one keeps its first revocation time); None if there is no such id."""
    if not isinstance(token_id, str) or not re.fullmatch(_ID, token_id):
        return None
    async with _session(engine) as s:
        row = await s.get(ApiToken, token_id)
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = _utcnow()
            await s.commit()
        return row


async def authenticate(engine: AsyncEngine, token: object) -> ApiToken | None:
    """The live token row ``token`` stands for; None when it is malformed, unknown, wrong or revoked.
    Database errors propagate (an outage is not a bad token)."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    token_id, secret = parsed
    async with _session(engine) as s:
        row = await s.get(ApiToken, token_id)
        if row is None or not secret_matches(secret, row.secret_sha256) or row.revoked_at is not None:
            return None
        now = _utcnow()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            await s.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id)
                .where(or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - LAST_USED_RESOLUTION))
                .values(last_used_at=now)
            )
            await s.commit()
            row.last_used_at = now
        return row
