"""Replay protection for signed messages: each signer's nonce is accepted once, by every replica,
across restarts.

A signed message's ReplayProtect carries a timestamp and a nonce. The timestamp must lie within
``window`` seconds of now, on either side (clocks differ both ways); the nonce must not have been
seen from the same signer. Nonces live in a NATS KV bucket shared by all gateway replicas, whose
entries expire after twice the window: a nonce stored at time t (with a timestamp >= t - window)
outlives t + 2 * window, and by then a message carrying that timestamp is outside the window
anyway. So the bucket holds only the nonces of the last 2 * window seconds.

One ``kv.create`` per message, whatever the bucket holds: JetStream stores it only if the key
does not exist yet (an expected-last-sequence of 0), atomically, so two replicas racing on the
same nonce cannot both accept it. When NATS cannot answer, the message is not accepted:
NonceStoreUnavailable, which the gateway answers with "try again".
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import datetime
from typing import Callable

import nats.errors
from nats.aio.client import Client as NATS
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from adrstack.shared import jetstream

__all__ = ["ReplayRefused", "Replayed", "OutsideWindow", "NonceStoreUnavailable", "NonceStore"]


class ReplayRefused(ValueError):
    """The message must not be accepted; ``str()`` is safe to send back."""


class Replayed(ReplayRefused):
    def __init__(self):
        super().__init__("this message's nonce was used before (replay)")


class OutsideWindow(ReplayRefused):
    def __init__(self, window: float):
        super().__init__(f"the signature's timestamp is more than {window:g} seconds from the VTN's clock")


class NonceStoreUnavailable(RuntimeError):
    """NATS did not answer: nothing was accepted; the VEN should send a fresh message later."""


class NonceStore:
    """The nonces of signed messages, in the KV bucket ``kv`` (see ``bind``)."""

    def __init__(self, nc: NATS, kv: KeyValue, window: float, *, timeout: float = 2.0,
                 clock: Callable[[], float] = time.time):
        self.nc = nc
        self.kv = kv
        self.window = window
        self.timeout = timeout
        self.clock = clock

    @classmethod
    async def bind(cls, nc: NATS, bucket: str, window: float, **kwargs) -> "NonceStore":
        """The store over ``bucket`` (the init step creates it with a TTL of 2 * the configured
        window). A bucket whose TTL is shorter (or unset) is refused: nonces would expire while a
        message carrying them is still inside the window, or never."""
        kv = await jetstream.bind_kv(nc.jetstream(), bucket)
        ttl = (await kv.status()).ttl
        if not ttl or ttl < 2 * window:
            raise ValueError(f"KV bucket {bucket!r} keeps entries for {ttl or 'ever'} s; replay protection "
                             f"with a {window:g} s window needs a TTL of {2 * window:g} s (recreate the bucket)")
        return cls(nc, kv, window, **kwargs)

    async def check(self, signer: str, timestamp: datetime, nonce: str) -> None:
        """Accept a signed message once: record ``nonce`` of ``signer`` (a certificate fingerprint),
        or raise OutsideWindow (``timestamp``, aware, too far from now), Replayed (seen before) or
        NonceStoreUnavailable."""
        if abs(timestamp.timestamp() - self.clock()) > self.window:
            raise OutsideWindow(self.window)
        # A fingerprint never holds a newline, so the pair is unambiguous; hex is a valid KV key
        # whatever the nonce's characters, and its length is fixed.
        key = hashlib.sha256(f"{signer}\n{nonce}".encode("utf-8")).hexdigest()
        if not self.nc.is_connected:
            # While reconnecting, nats-py buffers publishes and sends them later: the nonce would be
            # stored after we refused the message. Fail now instead.
            raise NonceStoreUnavailable("not connected to NATS")
        try:
            await asyncio.wait_for(self.kv.create(key, timestamp.isoformat().encode("ascii")), self.timeout)
        except KeyWrongLastSequenceError:
            raise Replayed() from None
        except (asyncio.TimeoutError, nats.errors.Error) as e:
            raise NonceStoreUnavailable(f"nonce store: {type(e).__name__}") from None
