"""Commands carrying a client idempotency key are applied once.

The first command with a key claims it in the commands KV bucket (atomic create) and, once done,
stores its reply there; a later command with the same key gets that reply and changes nothing.
The same key with a different request is a conflict. A claim whose reply never came (the replica
died mid-command) is taken over after ``abandon_after`` seconds. Keys expire with the bucket's TTL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel

from adrstack.shared.messages import CommandReply

from .commands import CommandRejected

KEY_TTL = 24 * 3600.0
MAX_KEY_LENGTH = 200
# Message envelope fields differ per request even when the command is the same.
_ENVELOPE = ("id", "occurred_at", "schema_version", "idempotency_key")


class Claim(BaseModel):
    verb: str
    request: str  # sha256 of the command without its envelope
    claimed_at: float  # time.time() of the claim
    reply: str | None = None  # the CommandReply's JSON, once done


def request_digest(verb: str, body: dict) -> str:
    command = {k: v for k, v in body.items() if k not in _ENVELOPE}
    return hashlib.sha256(json.dumps([verb, command], sort_keys=True, default=str).encode()).hexdigest()


def idempotency_key(body: dict) -> str | None:
    key = body.get("idempotency_key")
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise CommandRejected("invalid", f"idempotency_key: 1-{MAX_KEY_LENGTH} printable characters",
                              "idempotency_key")
    return key


class IdempotentCommands:
    def __init__(self, kv: KeyValue, *, abandon_after: float = 30.0, wait: float = 5.0, clock=time.time):
        self.kv = kv
        self.abandon_after = abandon_after
        self.wait = wait
        self.clock = clock

    @staticmethod
    def _kv_key(key: str) -> str:
        return "cmd." + hashlib.sha256(key.encode("utf-8")).hexdigest()

    async def begin(self, key: str, verb: str, digest: str) -> tuple[CommandReply | None, int | None]:
        """(the earlier reply, None) when the key was already applied; (None, revision of our claim)
        when this command is to be carried out now. Raises CommandRejected on a reused key."""
        kv_key = self._kv_key(key)
        deadline = time.monotonic() + self.wait
        while True:
            claim = Claim(verb=verb, request=digest, claimed_at=self.clock())
            try:
                return None, await self.kv.create(kv_key, claim.model_dump_json().encode())
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self.kv.get(kv_key)
            except KeyNotFoundError:
                continue  # expired or deleted just now: claim again
            existing = Claim.model_validate_json(entry.value)
            if existing.verb != verb or existing.request != digest:
                raise CommandRejected("conflict", "this idempotency_key was used for another request",
                                      "idempotency_key")
            if existing.reply is not None:
                return CommandReply.model_validate_json(existing.reply), None
            if self.clock() - existing.claimed_at > self.abandon_after:
                try:  # the replica that claimed it died mid-command: carry it out here
                    return None, await self.kv.update(kv_key, claim.model_dump_json().encode(), last=entry.revision)
                except KeyWrongLastSequenceError:
                    continue
            if time.monotonic() >= deadline:
                raise CommandRejected("unavailable", "a command with this idempotency_key is still in progress; "
                                                     "retry later for its result")
            await asyncio.sleep(0.05)

    async def finish(self, key: str, verb: str, digest: str, revision: int, reply: CommandReply) -> None:
        done = Claim(verb=verb, request=digest, claimed_at=self.clock(), reply=reply.model_dump_json())
        try:
            await self.kv.update(self._kv_key(key), done.model_dump_json().encode(), last=revision)
        except KeyWrongLastSequenceError:
            pass  # taken over as abandoned: that replica stores its own reply

    async def release(self, key: str, revision: int) -> None:
        """Forget a claim whose command could not be carried out (unavailable): a retry may run it."""
        try:
            await self.kv.delete(self._kv_key(key), last=revision)
        except Exception:
            pass  # it expires as abandoned
