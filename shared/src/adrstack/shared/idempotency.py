"""Requests carrying a client idempotency key are carried out once — the scheduler's event commands
(create, modify, cancel) and the api's program edits alike; this is the one implementation.

The first request with a key claims it in the commands KV bucket (``CommonSettings.commands_bucket``,
atomic create) and, once done, stores its result there; a later request with the same key gets that
result and changes nothing, even if the state changed since. The same key with a different request
(another verb, or other arguments) is :class:`KeyReused`. A concurrent request with the same key
waits (up to ``wait`` seconds) for the first one's result, then gives :class:`StillInProgress`. A
claim whose result never came (the process died mid-request) is taken over after ``abandon_after``
seconds. Keys expire with the bucket's TTL (:data:`KEY_TTL`).

Each kind of request has its own ``namespace`` (the KV key is ``<namespace>.<sha256 of the key>``),
so a client's key for a program edit never meets the same key of an event command.

What a result is, and which results are worth remembering, is the caller's: it passes ``encode``,
``decode`` and ``keep`` to :meth:`IdempotencyKeys.once`. A result that is not kept (e.g. "the store
was unavailable, nothing was done") releases the claim, so a retry carries the request out.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Awaitable, Callable, Iterable, TypeVar

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel

log = logging.getLogger(__name__)

KEY_TTL = 24 * 3600.0
MAX_KEY_LENGTH = 200

R = TypeVar("R")


class KeyReused(Exception):
    """The key was used for another request."""


class StillInProgress(Exception):
    """A request with this key is being carried out (elsewhere) and has no result yet."""


class Claim(BaseModel):
    verb: str
    request: str  # digest of the request (see request_digest)
    claimed_at: float  # time.time() of the claim
    reply: str | None = None  # the result as ``encode`` wrote it, once done


def valid_key(key: object) -> bool:
    return isinstance(key, str) and 1 <= len(key) <= MAX_KEY_LENGTH and key.isprintable()


def request_digest(verb: str, body: dict, leave_out: Iterable[str] = ()) -> str:
    """sha256 of the verb and the request's arguments (``leave_out``: fields that differ between two
    sendings of the same request, such as a message's id and time)."""
    skip = set(leave_out)
    request = {k: v for k, v in body.items() if k not in skip}
    return hashlib.sha256(json.dumps([verb, request], sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, kv: KeyValue, namespace: str, *, abandon_after: float = 30.0, wait: float = 5.0,
                 clock: Callable[[], float] = time.time):
        self.kv = kv
        self.namespace = namespace
        self.abandon_after = abandon_after
        self.wait = wait
        self.clock = clock

    def kv_key(self, key: str) -> str:
        return f"{self.namespace}." + hashlib.sha256(key.encode("utf-8")).hexdigest()

    async def begin(self, key: str, verb: str, digest: str) -> tuple[str | None, int | None]:
        """(the earlier result, None) when the key was already used for this request; (None, revision
        of our claim) when the request is to be carried out now. Raises KeyReused, StillInProgress,
        or the KV's own error when the bucket cannot be reached."""
        kv_key = self.kv_key(key)
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
                raise KeyReused(key)
            if existing.reply is not None:
                return existing.reply, None
            if self.clock() - existing.claimed_at > self.abandon_after:
                try:  # whoever claimed it died mid-request: carry it out here
                    return None, await self.kv.update(kv_key, claim.model_dump_json().encode(), last=entry.revision)
                except KeyWrongLastSequenceError:
                    continue
            if time.monotonic() >= deadline:
                raise StillInProgress(key)
            await asyncio.sleep(0.05)

    async def finish(self, key: str, verb: str, digest: str, revision: int, result: str) -> None:
        done = Claim(verb=verb, request=digest, claimed_at=self.clock(), reply=result)
        try:
            await self.kv.update(self.kv_key(key), done.model_dump_json().encode(), last=revision)
        except KeyWrongLastSequenceError:
            pass  # taken over as abandoned: that one stores its own result

    async def release(self, key: str, revision: int) -> None:
        """Forget a claim whose request was not carried out: a retry may carry it out."""
        try:
            await self.kv.delete(self.kv_key(key), last=revision)
        except Exception:
            pass  # it expires as abandoned

    async def once(self, key: str, verb: str, digest: str, run: Callable[[], Awaitable[R]], *,
                   encode: Callable[[R], str], decode: Callable[[str], R],
                   keep: Callable[[R], bool] = lambda result: True) -> R:
        """``run()``'s result, carried out once per key: the earlier result when there is one.
        ``run`` should return its refusals as results (so they are remembered too); an exception
        from it releases the claim and propagates. Raises what :meth:`begin` raises."""
        earlier, revision = await self.begin(key, verb, digest)
        if earlier is not None:
            return decode(earlier)
        assert revision is not None
        try:
            result = await run()
        except BaseException:
            await self.release(key, revision)
            raise
        try:
            if keep(result):
                await self.finish(key, verb, digest, revision, encode(result))
            else:
                await self.release(key, revision)  # nothing was done: a retry may do it
        except Exception as e:  # it is done; a retry finds the claim and waits it out
            log.warning("could not record the result of an idempotency key: %s", e)
        return result
