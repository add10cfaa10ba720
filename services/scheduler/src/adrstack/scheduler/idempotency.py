"""Event commands carrying a client idempotency key are applied once.

The claim/result logic is :mod:`adrstack.shared.idempotency` (shared with the api's program edits);
this is what is particular to commands: the key comes in the command's ``idempotency_key``, the
result is the CommandReply, refusals are remembered except "unavailable" and "internal" (nothing
was done: a retry may do it), and problems with the key are CommandRejected. Event commands use
the ``cmd`` namespace of the commands bucket.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from nats.js.kv import KeyValue

from adrstack.shared import idempotency
from adrstack.shared.idempotency import KEY_TTL, MAX_KEY_LENGTH, IdempotencyKeys, KeyReused, StillInProgress
from adrstack.shared.messages import CommandReply

from .commands import CommandRejected

__all__ = ["KEY_TTL", "IdempotentCommands", "idempotency_key", "request_digest"]

NAMESPACE = "cmd"
# Message envelope fields differ per request even when the command is the same.
_ENVELOPE = ("id", "occurred_at", "schema_version", "idempotency_key")
_NOT_DONE = ("unavailable", "internal")


def request_digest(verb: str, body: dict) -> str:
    return idempotency.request_digest(verb, body, leave_out=_ENVELOPE)


def idempotency_key(body: dict) -> str | None:
    key = body.get("idempotency_key")
    if key is None:
        return None
    if not idempotency.valid_key(key):
        raise CommandRejected("invalid", f"idempotency_key: 1-{MAX_KEY_LENGTH} printable characters",
                              "idempotency_key")
    return key


def _remembered(reply: CommandReply) -> bool:
    return reply.ok or reply.error is None or reply.error.code not in _NOT_DONE


class IdempotentCommands:
    def __init__(self, kv: KeyValue, **options):
        self.keys = IdempotencyKeys(kv, NAMESPACE, **options)

    async def answer(self, key: str, verb: str, digest: str, run: Callable[[], Awaitable[CommandReply]]
                     ) -> CommandReply:
        """``run()``'s reply, once per key. Raises CommandRejected on a reused key or one still in
        progress, and the KV's error when the bucket cannot be reached."""
        try:
            return await self.keys.once(key, verb, digest, run, encode=lambda r: r.model_dump_json(),
                                        decode=CommandReply.model_validate_json, keep=_remembered)
        except KeyReused:
            raise CommandRejected("conflict", "this idempotency_key was used for another request",
                                  "idempotency_key") from None
        except StillInProgress:
            raise CommandRejected("unavailable", "a command with this idempotency_key is still in progress; "
                                                 "retry later for its result") from None
