"""Signed messages: what the server checks on the way in and does on the way out.

A signature present is always checked (its signer must be the connection's client certificate
and its nonce new); ``require`` refuses unsigned messages; a signer signs every XML answer.
Checked before the handlers see anything, so a refused message changes nothing."""

from __future__ import annotations

import collections
import logging

from .codec import model as m
from .codec.signature import SignatureInvalid, Signer, verify
from .errors import NOT_REGISTERED_OR_AUTHORIZED, OpenAdrError, Unavailable
from .replay import NonceStore, NonceStoreUnavailable, ReplayRefused

log = logging.getLogger(__name__)


class MessageAuth:
    def __init__(self, nonces: NonceStore, *, require: bool = False, signer: Signer | None = None,
                 refused: collections.Counter | None = None):
        self.nonces = nonces
        self.require = require
        self.signer = signer
        self.refused = refused if refused is not None else collections.Counter()

    def _refuse(self, reason: str, description: str) -> OpenAdrError:
        self.refused[reason] += 1
        return OpenAdrError(NOT_REGISTERED_OR_AUTHORIZED, description)

    async def check(self, envelope: m.Envelope, peer: str | None) -> None:
        """Raise OpenAdrError 463 (or Unavailable, 469) unless the message may be handled."""
        if envelope.signature is None:
            if self.require:
                raise self._refuse("unsigned", "this VTN requires signed messages (XML signature)")
            return
        try:
            signed = verify(envelope.tree)
        except SignatureInvalid as e:
            log.debug("bad signature on %s: %s", envelope.message_type, e.detail)
            raise self._refuse("bad_signature", str(e)) from None
        # Over plain HTTP there is no certificate to hold the signer to; the signature still
        # proves integrity and its nonce is still spent.
        if peer is not None and signed.fingerprint != peer:
            raise self._refuse("foreign_signature", "the message is not signed with the connection's certificate")
        try:
            await self.nonces.check(signed.fingerprint, signed.timestamp, signed.nonce)
        except ReplayRefused as e:
            raise self._refuse("replayed", str(e)) from None
        except NonceStoreUnavailable as e:
            log.warning("replay protection unavailable: %s", e)
            raise Unavailable("replay protection") from None

    def sign(self, answer: bytes) -> bytes:
        return answer if self.signer is None else self.signer.sign(answer)
