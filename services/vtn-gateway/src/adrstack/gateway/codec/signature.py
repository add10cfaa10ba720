"""2.0b XML signatures: verifying what VENs sign, signing what the VTN sends.

A 2.0b signature is a detached XMLDSig ds:Signature, the first child of oadrPayload, with two
references: the oadrSignedObject beside it (by its Id) and a ds:Object of its own holding a
dsp:ReplayProtect (timestamp and nonce), so that a captured message cannot be sent again.

Written against lxml and ``cryptography`` directly rather than signxml, by measurement on this
machine (bench/signatures.py): openleadr (signxml) takes ~70 ms to sign with an RSA key (it
loads the key, with OpenSSL's RSA consistency check, twice per message), ~0.5-1 ms with a P-256
key, and ~0.6-0.9 ms to verify, where the arithmetic itself is ~250 us (RSA-2048 sign), ~25 us
(P-256 sign), ~20 us (RSA verify), ~60 us (P-256 verify). Around it here: the reader's tree is
canonicalized in place (three lxml C14N calls, ~10 us each, the bulk of the rest), certificates
are parsed once (cached by their X509Certificate text), and an outgoing message's canonical
form is derived from the renderer's string instead of a parse.

What is accepted, and why no more:
- canonicalization (SignedInfo and references): C14N 1.0 inclusive (what openleadr uses) or
  exclusive C14N, both without comments (the reader drops comments; "#WithComments" would
  then never match, so it is refused as unsupported);
- digests: SHA-256 only; signatures: rsa-sha256 and ecdsa-sha256 only. These are the 2.0b
  suites. SHA-1 (rsa-sha1, ecdsa-sha1, a sha1 digest) is refused: it has practical
  collisions, and a colliding signed object would carry a valid signature;
- exactly two references, both same-document "#Id" references: one to the oadrSignedObject
  that is oadrPayload's child (the very element the reader reads), one to an element of one
  of this signature's ds:Object children that holds its one dsp:ReplayProtect. Any other
  reference, an Id used twice in the document, or a ReplayProtect outside what is signed is
  refused (signature wrapping: a signed element moved elsewhere must not vouch for another);
- the key is the first X509Certificate of KeyInfo/X509Data (RSA of at least 2048 bits, or
  EC). Its chain and validity are not checked here: the caller compares the reported
  fingerprint with the TLS client certificate's, which the TLS layer has verified.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from adrstack.shared.identity import fingerprint_of_der

from .names import DS, PAYLOAD, PREFIXES, SIGNATURE, SIGNED_OBJECT
from .render import HEAD, TAIL
from .values import format_datetime

__all__ = ["SignatureInvalid", "VerifiedSignature", "verify", "Signer"]

DSP = "http://openadr.org/oadr-2.0b/2012/07/xmldsig-properties"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

MIN_RSA_BITS = 2048
MAX_NONCE_CHARS = 256


class SignatureInvalid(ValueError):
    """A signature that is missing, malformed, unsupported or wrong.

    ``str()`` is generic (safe to send back); ``detail`` says what, for our logs only."""

    def __init__(self, detail: str):
        super().__init__("the XML signature is missing or not valid")
        self.detail = detail


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """What a valid signature vouches for. Whether its signer may speak for the VEN is the caller's
    decision (the fingerprint must be the TLS client certificate's)."""

    fingerprint: str  # 2.0b fingerprint of the signer's certificate
    timestamp: datetime  # ReplayProtect timestamp, aware, UTC
    nonce: str


# --------------------------------------------------------------------------- verifying


def _ds(name: str) -> str:
    return f"{{{DS}}}{name}"


_SIGNED_INFO = _ds("SignedInfo")
_SIGNATURE_VALUE = _ds("SignatureValue")
_C14N_METHOD = _ds("CanonicalizationMethod")
_SIGNATURE_METHOD = _ds("SignatureMethod")
_REFERENCE = _ds("Reference")
_TRANSFORMS = _ds("Transforms")
_DIGEST_METHOD = _ds("DigestMethod")
_DIGEST_VALUE = _ds("DigestValue")
_KEY_INFO = _ds("KeyInfo")
_X509_DATA = _ds("X509Data")
_X509_CERTIFICATE = _ds("X509Certificate")
_OBJECT = _ds("Object")
_REPLAY_PROTECT = f"{{{DSP}}}ReplayProtect"
_TIMESTAMP = f"{{{DSP}}}timestamp"
_NONCE = f"{{{DSP}}}nonce"
_INCLUSIVE_NAMESPACES = f"{{{EXC_C14N}}}InclusiveNamespaces"

# Every ID-like attribute (Id, ID, id, xml:id, in any namespace) in the document: what an "#Id"
# reference may resolve to, in any implementation's eyes. A referenced value found twice is
# refused. One XPath for the document (~8 us for a poll; most of it fixed cost).
_ID_ATTRIBUTES = etree.XPath("//@*[local-name()='Id' or local-name()='ID' or local-name()='id']")
_DATETIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True, slots=True)
class _Certificate:
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    fingerprint: str


@functools.lru_cache(maxsize=1024)
def _certificate(text: str) -> _Certificate:
    """A signer certificate (the X509Certificate text), parsed once: a VEN signs every message with
    the same one. Bounded: a flood of distinct certificates only costs their parsing."""
    der = _base64(text, "X509Certificate")
    try:
        key = x509.load_der_x509_certificate(der).public_key()
    except Exception as e:  # noqa: BLE001
        # Whatever cryptography raises for bytes from outside (ValueError, InvalidVersion,
        # UnsupportedAlgorithm, ...: they share no base class), the certificate is unusable.
        raise SignatureInvalid(f"unreadable X509Certificate: {type(e).__name__}: {e}") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise SignatureInvalid(f"RSA key of {key.key_size} bits")
    elif not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureInvalid(f"unsupported key type {type(key).__name__}")
    return _Certificate(public_key=key, fingerprint=fingerprint_of_der(der))


def _base64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"{what} is not base64") from None


def _child(parent, index: int, tag: str):
    """``parent``'s child at ``index``, which must be a ``tag``. The schema fixes the order of a
    signature's parts, so positions are checked rather than searched (lxml's find is ~2 us)."""
    if len(parent) <= index or parent[index].tag != tag:
        raise SignatureInvalid(f"no {tag.rpartition('}')[2]} where expected")
    return parent[index]


def _canonical(el, *, exclusive: bool = False, prefixes: list[str] | None = None) -> bytes:
    """``el`` canonicalized in its document context."""
    try:
        return etree.tostring(el, method="c14n", exclusive=exclusive, inclusive_ns_prefixes=prefixes)
    except etree.C14NError:
        # libxml2 refuses to canonicalize e.g. a relative namespace URI, which well-formed XML
        # (and the schema: declarations are not attributes) allows anywhere.
        raise SignatureInvalid("cannot canonicalize (a relative namespace URI?)") from None


def _c14n(el, algorithm_el) -> bytes:
    """``el`` canonicalized with the algorithm ``algorithm_el`` names."""
    algorithm = algorithm_el.get("Algorithm")
    if algorithm == C14N:
        return _canonical(el)
    if algorithm == EXC_C14N:
        prefixes = None
        for child in algorithm_el:
            if child.tag == _INCLUSIVE_NAMESPACES:
                prefixes = (child.get("PrefixList") or "").split()
        return _canonical(el, exclusive=True, prefixes=prefixes)
    raise SignatureInvalid(f"unsupported canonicalization {str(algorithm)[:100]!r}")


def _resolve(ids: list, reference) -> etree._Element:
    uri = reference.get("URI") or ""
    if not uri.startswith("#") or uri.startswith("#xpointer("):
        raise SignatureInvalid(f"reference URI {uri[:100]!r} is not a same-document #Id")
    value = uri[1:]
    found = [attribute for attribute in ids if attribute == value]
    if len(found) != 1:
        raise SignatureInvalid(f"reference URI {uri[:100]!r} matches {len(found)} elements")
    return found[0].getparent()


def _reference_c14n(target, reference, *, enveloped_ok: bool) -> tuple[bytes, object]:
    """The octets a reference digests (its target through its transforms), and its DigestMethod
    element. A reference may name at most one canonicalization (none means inclusive C14N),
    preceded at most by enveloped-signature where that is a no-op (the target does not contain
    the signature)."""
    first = reference[0] if len(reference) else None
    if first is None or first.tag != _TRANSFORMS:
        return _canonical(target), first
    steps = list(first)
    if steps and steps[0].get("Algorithm") == ENVELOPED and enveloped_ok:
        steps = steps[1:]
    if len(steps) > 1:
        raise SignatureInvalid("unsupported chain of transforms")
    octets = _canonical(target) if not steps else _c14n(target, steps[0])
    return octets, reference[1] if len(reference) > 1 else None


def _check_digest(reference, target, *, enveloped_ok: bool) -> None:
    octets, method = _reference_c14n(target, reference, enveloped_ok=enveloped_ok)
    if method is None or method.tag != _DIGEST_METHOD or method.get("Algorithm") != SHA256:
        raise SignatureInvalid("unsupported digest method")
    value = method.getnext()
    if value is None or value.tag != _DIGEST_VALUE:
        raise SignatureInvalid("no DigestValue")
    if not hmac.compare_digest(hashlib.sha256(octets).digest(), _base64(value.text, "DigestValue")):
        raise SignatureInvalid(f"digest mismatch for {reference.get('URI', '')[:100]!r}")


def _object_of(el, signature) -> bool:
    """Whether ``el`` is one of ``signature``'s ds:Object children or lies inside one."""
    while el is not None:
        parent = el.getparent()
        if parent is signature:
            return el.tag == _OBJECT
        el = parent
    return False


def _is_within(el, ancestor) -> bool:
    while el is not None:
        if el is ancestor:
            return True
        el = el.getparent()
    return False


def _parse_timestamp(text: str | None) -> datetime:
    m = _DATETIME.fullmatch((text or "").strip())
    if m is None:
        raise SignatureInvalid("ReplayProtect timestamp is not a date-time with a zone")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        tz = timezone.utc if zone == "Z" else timezone(
            (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                         int((fraction or "0")[:6].ljust(6, "0")), tzinfo=tz)
        return value.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise SignatureInvalid("ReplayProtect timestamp is out of range") from None


def _check_signature_value(algorithm: str | None, key, value: bytes, signed_info: bytes) -> None:
    try:
        if algorithm == RSA_SHA256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(value, signed_info, padding.PKCS1v15(), hashes.SHA256())
        elif algorithm == ECDSA_SHA256 and isinstance(key, ec.EllipticCurvePublicKey):
            # XMLDSig carries ECDSA as raw r || s, each as long as the curve's order; cryptography
            # takes DER.
            size = (key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                raise SignatureInvalid("ECDSA SignatureValue of the wrong length")
            r, s = int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
            key.verify(encode_dss_signature(r, s), signed_info, ec.ECDSA(hashes.SHA256()))
        else:
            raise SignatureInvalid(f"unsupported signature method {str(algorithm)[:100]!r} for this key")
    except InvalidSignature:
        raise SignatureInvalid("SignatureValue does not match SignedInfo") from None


def _certificate_text(signature) -> str:
    """The first X509Certificate of the signature's KeyInfo/X509Data (a chain starts with the signer)."""
    for part in signature:
        if part.tag == _KEY_INFO:
            for data in part:
                if data.tag == _X509_DATA:
                    for item in data:
                        if item.tag == _X509_CERTIFICATE:
                            return item.text or ""
    raise SignatureInvalid("no KeyInfo/X509Data/X509Certificate")


def verify(tree) -> VerifiedSignature:
    """Verify the ds:Signature of a parsed oadrPayload (``Envelope.tree``); raise SignatureInvalid.

    Cost: canonicalizing SignedInfo and the two referenced elements, two SHA-256, one public-key
    verification, and on the first message of a certificate, parsing it."""
    if tree is None or tree.tag != PAYLOAD or len(tree) != 2 or tree[0].tag != SIGNATURE \
            or tree[1].tag != SIGNED_OBJECT:
        raise SignatureInvalid("not an oadrPayload with a ds:Signature and an oadrSignedObject")
    signature, signed_object = tree[0], tree[1]
    signed_info = _child(signature, 0, _SIGNED_INFO)
    c14n_method = _child(signed_info, 0, _C14N_METHOD)
    signature_method = _child(signed_info, 1, _SIGNATURE_METHOD)
    references = signed_info[2:]
    if len(references) != 2 or any(r.tag != _REFERENCE for r in references):
        raise SignatureInvalid(f"{len(references)} references instead of 2")

    ids = _ID_ATTRIBUTES(tree)
    replay_protect = None
    covered_object = covered_properties = False
    for reference in references:
        target = _resolve(ids, reference)
        if target is signed_object:
            if covered_object:
                raise SignatureInvalid("the signed object is referenced twice")
            _check_digest(reference, target, enveloped_ok=True)
            covered_object = True
        elif _object_of(target, signature):
            if covered_properties:
                raise SignatureInvalid("two references into ds:Object")
            found = list(signature.iter(_REPLAY_PROTECT))
            if len(found) != 1 or not _is_within(found[0], target):
                raise SignatureInvalid("the referenced ds:Object does not hold the one ReplayProtect")
            _check_digest(reference, target, enveloped_ok=False)
            replay_protect = found[0]
            covered_properties = True
        else:
            raise SignatureInvalid(f"reference {reference.get('URI', '')[:100]!r} is to neither the signed "
                                   "object nor this signature's ReplayProtect")
    if not (covered_object and covered_properties):
        raise SignatureInvalid("the signed object or the ReplayProtect is not referenced")

    signer = _certificate(_certificate_text(signature))
    value = _base64(_child(signature, 1, _SIGNATURE_VALUE).text, "SignatureValue")
    _check_signature_value(signature_method.get("Algorithm"), signer.public_key, value,
                           _c14n(signed_info, c14n_method))

    timestamp = _child(replay_protect, 0, _TIMESTAMP).text
    nonce = _child(replay_protect, 1, _NONCE).text
    if not nonce or len(nonce) > MAX_NONCE_CHARS:
        raise SignatureInvalid("ReplayProtect nonce missing, empty or too long")
    return VerifiedSignature(fingerprint=signer.fingerprint, timestamp=_parse_timestamp(timestamp), nonce=nonce)


# --------------------------------------------------------------------------- signing

# The namespaces in scope inside ds:Signature and inside oadrSignedObject, as inclusive C14N
# writes them on the apex of a canonicalized element: every in-scope declaration, by prefix.
_ROOT_NS = "".join(f' xmlns:{prefix}="{uri}"' for prefix, uri in sorted(PREFIXES.items()))
_SIGNATURE_NS = "".join(f' xmlns:{prefix}="{uri}"' for prefix, uri in sorted({**PREFIXES, "ds": DS}.items()))

# render.HEAD ends with the signed object's start tag; the signature goes right before it.
_SIGNED_OBJECT_TAG = '<oadr:oadrSignedObject oadr:Id="oadrSignedObject">'
_OBJECT_ID = "replayProtect"
_SIGNATURE_ID = "signature"
# The two attribute-less empty elements render.py writes, and their canonical form.
_EMPTY_TAGS = (b"<pyld:requestID/>", b"<xcal:components/>")


def _canonical_inner(inner: bytes) -> bytes | None:
    """The C14N form of the content of a signed object rendered by render.py, or None when it holds
    something this shortcut does not cover (the caller then canonicalizes with lxml).

    Why this equals lxml's C14N: render.py writes no whitespace between tags, no comments,
    processing instructions, CDATA or character references, one attribute per element with a
    constant value, and text through saxutils.escape, which escapes exactly what C14N escapes in
    text (&, <, >) -- except carriage returns, which a parser turns into line feeds (hence
    None). Left to rewrite: empty-element tags, which C14N writes as start and end tags. The
    unit tests compare both forms for every renderer with generated text."""
    if b"\r" in inner:
        return None
    for tag in _EMPTY_TAGS:
        if tag in inner:
            inner = inner.replace(tag, tag[:-2] + b"></" + tag[1:-2] + b">")
    if b"/>" in inner:
        return None
    return inner


class Signer:
    """Signs outgoing messages with one certificate and key, loaded once (RSA or EC, PEM)."""

    def __init__(self, cert_pem: bytes, key_pem: bytes):
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise ValueError(f"an RSA signing key needs at least {MIN_RSA_BITS} bits")
            algorithm = RSA_SHA256
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            algorithm = ECDSA_SHA256
        else:
            raise ValueError("the signing key must be RSA or EC")
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            raise ValueError("the signing key does not belong to the signing certificate")
        self._key = key
        der = cert.public_bytes(serialization.Encoding.DER)
        self.fingerprint = fingerprint_of_der(der)
        self._ec_size = (key.curve.key_size + 7) // 8 if algorithm == ECDSA_SHA256 else 0
        b64 = base64.b64encode(der).decode("ascii")
        lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
        self._key_info = (f"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{lines}</ds:X509Certificate>"
                          "</ds:X509Data></ds:KeyInfo>").encode("ascii")
        self._payload_head = HEAD.removesuffix(_SIGNED_OBJECT_TAG).encode("utf-8")
        self._signed_object_c14n_head = f'<oadr:oadrSignedObject{_ROOT_NS} oadr:Id="oadrSignedObject">'.encode()
        self._head = HEAD.encode("utf-8")
        self._tail = TAIL.encode("utf-8")
        # SignedInfo up to the first DigestValue, between the two, and after the second; the
        # document holds the same bytes without the namespace declarations (they are in scope).
        reference_head = (f'<ds:Transforms><ds:Transform Algorithm="{C14N}"></ds:Transform></ds:Transforms>'
                          f'<ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod><ds:DigestValue>')
        body = (f'<ds:CanonicalizationMethod Algorithm="{C14N}"></ds:CanonicalizationMethod>'
                f'<ds:SignatureMethod Algorithm="{algorithm}"></ds:SignatureMethod>'
                f'<ds:Reference URI="#oadrSignedObject">{reference_head}')
        self._info_parts = (body, f'</ds:DigestValue></ds:Reference><ds:Reference URI="#{_OBJECT_ID}">{reference_head}',
                            "</ds:DigestValue></ds:Reference></ds:SignedInfo>")
        self._object_head = (f'<ds:Object Id="{_OBJECT_ID}"><ds:SignatureProperties>'
                             f'<ds:SignatureProperty Target="#{_SIGNATURE_ID}"><dsp:ReplayProtect xmlns:dsp="{DSP}">'
                             "<dsp:timestamp>")
        self._object_c14n_head = self._object_head.replace("<ds:Object", f"<ds:Object{_SIGNATURE_NS}", 1)
        self._object_tail = ("</dsp:nonce></dsp:ReplayProtect></ds:SignatureProperty></ds:SignatureProperties>"
                             "</ds:Object>")

    @classmethod
    def from_files(cls, cert_path: str | Path, key_path: str | Path) -> "Signer":
        return cls(Path(cert_path).read_bytes(), Path(key_path).read_bytes())

    def sign(self, body: bytes, *, now: datetime | None = None) -> bytes:
        """``body`` (a message from render.py, unsigned) with a ds:Signature of this signer and a
        fresh ReplayProtect: a random nonce and the time ``now`` (default: the clock's)."""
        if not (body.startswith(self._head) and body.endswith(self._tail)):
            raise ValueError("only messages rendered by codec.render can be signed")
        inner = body[len(self._head):len(body) - len(self._tail)]
        canonical = _canonical_inner(inner)
        if canonical is None:
            signed_object_c14n = etree.tostring(etree.fromstring(body)[-1], method="c14n")
        else:
            signed_object_c14n = self._signed_object_c14n_head + canonical + b"</oadr:oadrSignedObject>"

        timestamp = format_datetime(now or datetime.now(timezone.utc))
        replay = f"{timestamp}</dsp:timestamp><dsp:nonce>{secrets.token_hex(16)}{self._object_tail}"
        object_c14n = (self._object_c14n_head + replay).encode("utf-8")

        start, middle, end = self._info_parts
        info = start + _digest(signed_object_c14n) + middle + _digest(object_c14n) + end
        value = base64.b64encode(self._sign(f"<ds:SignedInfo{_SIGNATURE_NS}>{info}".encode("ascii"))).decode("ascii")
        signature = (f'<ds:Signature xmlns:ds="{DS}" Id="{_SIGNATURE_ID}"><ds:SignedInfo>{info}'
                     f"<ds:SignatureValue>{value}</ds:SignatureValue>").encode("ascii")
        return b"".join((self._payload_head, signature, self._key_info, (self._object_head + replay).encode("utf-8"),
                         b"</ds:Signature>", body[len(self._payload_head):]))

    def _sign(self, data: bytes) -> bytes:
        if not self._ec_size:  # RSA
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(self._ec_size, "big") + s.to_bytes(self._ec_size, "big")


def _digest(octets: bytes) -> str:
    return base64.b64encode(hashlib.sha256(octets).digest()).decode("ascii")
