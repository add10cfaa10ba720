"""Signed oadrPoll messages for the load generator, byte for byte what openleadr's
``create_message('oadrPoll', cert=, key=, ven_id=)`` sends, about 15x cheaper.

A signed 2.0b message carries an enveloping XMLDSig ``Signature`` (as openleadr/signxml write it:
inclusive C14N 1.0, SHA-256 digests, ``ecdsa-sha256`` or ``rsa-sha256``) over two references: the
``oadrSignedObject`` and a ``ReplayProtect`` property holding a timestamp and a nonce. For a poll,
the signed object depends on the venID only, so its digest is computed once per VEN; per message
only the ReplayProtect digest (one SHA-256 over a fixed-shape C14N text), the canonical SignedInfo
(a fixed text with two digests in it) and one private-key signature change. openleadr renders and
canonicalizes with signxml and lxml, and reloads the private key, on every call: ~650 us per ECC
poll and ~70 ms per RSA one (cryptography checks an RSA key on every load).

Every template is derived from a message openleadr signed, and ``PollSigner`` checks itself at
construction: its message for the same timestamp and nonce equals openleadr's except the signature
value (ECDSA is randomized), and signxml verifies it.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import itertools
import re
import secrets
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator, Sequence

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

DS = "{http://www.w3.org/2000/09/xmldsig#}"
DSP = "{http://openadr.org/oadr-2.0b/2012/07/xmldsig-properties}"
OADR = "{http://openadr.org/oadr-2.0b/2012/07}"
VEN = "VENSENTINEL0123456789"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]+")  # needs no XML escaping
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # openleadr's DATETIME_FORMAT


def _c14n(element) -> bytes:
    return etree.tostring(element, method="c14n")


def _b64digest(data: bytes) -> bytes:
    return base64.b64encode(hashlib.sha256(data).digest())


def _split(text: bytes, marks: Sequence[bytes]) -> list[bytes]:
    """``text`` cut at each mark, which must each occur exactly once and in this order."""
    pieces, rest = [], text
    for mark in marks:
        if text.count(mark) != 1:
            raise ValueError(f"template mark {mark[:40]!r} occurs {text.count(mark)} times")
        head, rest = rest.split(mark, 1)
        pieces.append(head)
    return pieces + [rest]


@contextmanager
def _fixed_replay_protect(timestamp: str, nonce: str) -> Iterator[None]:
    """openleadr's create_message with a ReplayProtect of our choosing (for the self-check)."""
    from openleadr import messaging

    original = messaging._create_replay_protect

    def fixed():
        element = original()
        element.find(f"{DSP}timestamp").text = timestamp
        element.find(f"{DSP}nonce").text = nonce
        return element

    messaging._create_replay_protect = fixed
    try:
        yield
    finally:
        messaging._create_replay_protect = original


class PollSigner:
    """``poll_body(ven_id)``: a freshly signed oadrPoll (timestamp now, a nonce never used before)."""

    def __init__(self, cert_pem: bytes, key_pem: bytes):
        from openleadr.messaging import create_message

        self.key = serialization.load_pem_private_key(key_pem, None)
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            self._size = (self.key.curve.key_size + 7) // 8
        elif not isinstance(self.key, rsa.RSAPrivateKey):
            raise ValueError("only ECC and RSA keys sign 2.0b messages")
        sample = create_message("oadrPoll", cert=cert_pem, key=key_pem, ven_id=VEN).encode()
        tree = etree.fromstring(sample)
        ts_el, nonce_el = tree.find(f".//{DSP}timestamp"), tree.find(f".//{DSP}nonce")
        ts, nonce = ts_el.text.encode(), nonce_el.text.encode()
        refs = tree.findall(f".//{DS}Reference")
        if [r.get("URI") for r in refs] != ["#oadrSignedObject", "#prop"]:
            raise ValueError("openleadr's signature no longer has the shape this signer knows")
        obj_digest, prop_digest = (r.find(f"{DS}DigestValue").text.encode() for r in refs)
        signature_value = tree.find(f".//{DS}SignatureValue").text.encode()

        signed_object = _c14n(tree.find(f"{OADR}oadrSignedObject"))
        prop = _c14n(tree.find(f".//{DS}Object"))
        signed_info = _c14n(tree.find(f".//{DS}SignedInfo"))
        if _b64digest(signed_object) != obj_digest or _b64digest(prop) != prop_digest:
            raise ValueError("the canonical forms here do not give openleadr's digests")
        self._object_parts = _split(signed_object, [VEN.encode()])
        self._prop_parts = _split(prop, [ts, nonce])
        self._info_parts = _split(signed_info, [obj_digest, prop_digest])
        self._message_parts = _split(sample, [obj_digest, prop_digest,
                                              signature_value, ts, nonce, VEN.encode()])
        self._object_digests: dict[str, bytes] = {}
        self._nonce_prefix = secrets.token_hex(8)
        self._counter = itertools.count()
        self._self_check(cert_pem, key_pem)

    # ------------------------------------------------------------------ signing

    def object_digest(self, ven_id: str) -> bytes:
        digest = self._object_digests.get(ven_id)
        if digest is None:
            if not _SAFE_ID.fullmatch(ven_id):
                raise ValueError(f"venID {ven_id!r} would need XML escaping")
            digest = self._object_digests[ven_id] = _b64digest(ven_id.encode().join(self._object_parts))
        return digest

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            raw = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:  # XMLDSig wants r || s, each padded to the curve size, not DER
            r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
            raw = r.to_bytes(self._size, "big") + s.to_bytes(self._size, "big")
        return base64.b64encode(raw)

    def poll_body(self, ven_id: str, timestamp: str | None = None, nonce: str | None = None) -> bytes:
        ts = (timestamp or datetime.now(timezone.utc).strftime(_TIMESTAMP_FORMAT)).encode()
        nonce_b = (nonce or f"{self._nonce_prefix}{next(self._counter):016x}").encode()
        p = self._prop_parts
        prop_digest = _b64digest(p[0] + ts + p[1] + nonce_b + p[2])
        obj_digest = self.object_digest(ven_id)
        i = self._info_parts
        signature = self._sign(i[0] + obj_digest + i[1] + prop_digest + i[2])
        m = self._message_parts
        return b"".join((m[0], obj_digest, m[1], prop_digest, m[2], signature, m[3], ts, m[4], nonce_b, m[5],
                         ven_id.encode(), m[6]))

    # ------------------------------------------------------------------ self-check

    def _self_check(self, cert_pem: bytes, key_pem: bytes) -> None:
        from openleadr.messaging import create_message, parse_message, validate_xml_schema, validate_xml_signature

        ts = datetime.now(timezone.utc).strftime(_TIMESTAMP_FORMAT)
        nonce = secrets.token_hex(16)
        with _fixed_replay_protect(ts, nonce):
            theirs = create_message("oadrPoll", cert=cert_pem, key=key_pem, ven_id="ven-check").encode()
        ours = self.poll_body("ven-check", ts, nonce)
        strip = re.compile(rb"<ds:SignatureValue>[^<]*</ds:SignatureValue>")
        if strip.sub(b"", ours) != strip.sub(b"", theirs):
            raise AssertionError("the fast signer's poll differs from openleadr's")
        validate_xml_signature(validate_xml_schema(ours))  # signxml; also its replay check (fresh, unused)
        assert parse_message(ours) == ("oadrPoll", {"ven_id": "ven-check"})


class SignedPolls(Sequence[bytes]):
    """Signed poll requests for a ClosedLoop/OpenLoop (``post`` makes a request of a body, e.g.
    ``Messages.post``), round-robin over ``ven_ids``, each used once (a fresh nonce every time).

    By default a poll is signed when it is taken, so it is always fresh: openleadr refuses a
    signature more than 5 s old. ``prefill(n)`` signs n polls ahead, taken first, for a server
    whose replay window outlasts the run; it moves the signing out of the measuring window."""

    def __init__(self, signer: PollSigner, post, ven_ids: Sequence[str]):
        self.signer, self.post, self.ven_ids = signer, post, list(ven_ids)
        self._ready: collections.deque[bytes] = collections.deque()

    def __len__(self) -> int:
        return len(self.ven_ids)

    def __getitem__(self, i: int) -> bytes:
        if self._ready:
            return self._ready.popleft()
        return self.post("OadrPoll", self.signer.poll_body(self.ven_ids[i % len(self.ven_ids)]))

    def prefill(self, count: int) -> float:
        """Signs ``count`` polls now; returns the CPU seconds that took."""
        t0 = time.process_time()
        n = len(self.ven_ids)
        self._ready.extend(self.post("OadrPoll", self.signer.poll_body(self.ven_ids[i % n])) for i in range(count))
        return time.process_time() - t0

    @property
    def ready(self) -> int:
        return len(self._ready)


def signing_cost(signer: PollSigner, n: int = 500) -> float:
    """Seconds of CPU per signed poll (this process)."""
    t0 = time.process_time()
    for i in range(n):
        signer.poll_body(f"ven-{i % 50}")
    return (time.process_time() - t0) / n
