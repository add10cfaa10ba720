"""XML signatures, with openleadr (signxml) as the oracle in both directions.

- What openleadr's VEN signs (RSA and ECC certificates, every message a VTN reads, random
  content) verifies, reporting the signer's fingerprint and the ReplayProtect's nonce/timestamp.
- Anything wrong is SignatureInvalid and nothing else: tampered content, swapped certificates,
  unsupported or weak algorithms, references to anything but the signed object and the
  ReplayProtect, signature wrapping (the signed object moved, its Id duplicated), missing parts.
  Where the point is that a *structure* is refused, the test re-signs it with the real key
  (``resign``), so a failing signature cannot be what refuses it.
- What our Signer signs (every renderer, random content) passes our XSD, our verify, and
  openleadr's validate_xml_signature with the VTN's fingerprint (what its VEN runs) and
  parse_message.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from openleadr import errors as ol_errors
from openleadr import utils as ol_utils
from openleadr.messaging import create_message, parse_message, validate_xml_schema, validate_xml_signature
from signxml import XMLSigner, methods
from signxml.algorithms import SignatureMethod

from adrstack.gateway.codec import model as m
from adrstack.gateway.codec import parse, render
from adrstack.gateway.codec.names import DS
from adrstack.gateway.codec.schema import schema
from adrstack.gateway.codec.signature import DSP, Signer, SignatureInvalid, verify
from adrstack.shared.identity import fingerprint_of_der

from .strategies import text
from .test_parse_oracle import CASES, _for_openleadr
from .test_render_oracle import event_parts, ei_responses, poll_ven_ids, profiles, report_requests
from tests.helpers import temp_dir

NS = {"ds": DS, "dsp": DSP, "oadr": "http://openadr.org/oadr-2.0b/2012/07",
      "ei": "http://docs.oasis-open.org/ns/energyinterop/201110"}
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RESPONSE = {"response_code": 200, "response_description": "OK", "request_id": "req-1"}


# --------------------------------------------------------------------------- certificates


class Pair:
    """A leaf certificate and its key, as files and in memory. Not a dataclass: hypothesis prints
    a failing example's arguments, and dataclasses in full (keys included)."""

    def __init__(self, label: str, directory: Path, cert: x509.Certificate,
                 key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        self.label = label
        self.key = key
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        self.fingerprint = fingerprint_of_der(cert.public_bytes(serialization.Encoding.DER))
        self.cert_path, self.key_path = directory / f"{label}.crt", directory / f"{label}.key"
        self.cert_path.write_bytes(self.cert_pem)
        self.key_path.write_bytes(self.key_pem)

    def __repr__(self) -> str:
        return f"<{self.label} pair>"


@pytest.fixture(scope="module")
def pki():
    """A CA and leaves signed by it: RSA-2048, P-256, and a second P-256 (for swapping certificates),
    in a temp dir removed afterwards."""
    directory = temp_dir("sig-tests")
    now = datetime.now(timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test ca")).issuer_name(name("test ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    pairs = {}
    for label, key in (("rsa", rsa.generate_private_key(65537, 2048)), ("ecc", ec.generate_private_key(ec.SECP256R1())),
                       ("ecc2", ec.generate_private_key(ec.SECP256R1()))):
        cert = (x509.CertificateBuilder().subject_name(name(f"ven {label}")).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
                .sign(ca_key, hashes.SHA256()))
        pairs[label] = Pair(label, directory, cert, key)
    yield pairs
    shutil.rmtree(directory)


def ol_signed(pair: Pair, message_type: str = "oadrPoll", **payload) -> bytes:
    """What openleadr's VEN sends: create_message with its certificate and key."""
    payload = payload or {"ven_id": "ven-1"}
    return create_message(message_type, cert=pair.cert_pem, key=pair.key_pem, **payload).encode("utf-8")


def tree_of(body: bytes):
    """A signed message as the gateway holds it: our reader's tree (hardened parse, XSD)."""
    envelope = parse(body)
    assert envelope.signature is not None and envelope.tree is not None
    return envelope.tree


def refused(tree) -> SignatureInvalid:
    """verify() refuses ``tree``, after a serialization round trip (what would arrive)."""
    with pytest.raises(SignatureInvalid) as e:
        verify(etree.fromstring(etree.tostring(tree)))
    assert str(e.value) == "the XML signature is missing or not valid"  # generic: nothing leaks to the VEN
    return e.value


def ds(el, path: str):
    return el.find(path, NS)


def resign(tree, pair: Pair) -> None:
    """Recompute every digest and the SignatureValue of ``tree`` with ``pair``'s key, as whatever the
    document now says (inclusive C14N only; sha1/sha256; rsa-sha1/rsa-sha256/ecdsa-sha256): a
    structure that verify() refuses after this is refused for its structure, not its arithmetic."""
    signature = tree[0]
    signed_info = ds(signature, "ds:SignedInfo")
    for reference in signed_info.findall("ds:Reference", NS):
        uri = reference.get("URI")
        target = tree if uri == "" else tree.xpath("//*[@*[local-name()='Id']=$v]", v=uri[1:])[0]
        digest = hashlib.sha1 if ds(reference, "ds:DigestMethod").get("Algorithm") == SHA1 else hashlib.sha256
        ds(reference, "ds:DigestValue").text = base64.b64encode(
            digest(etree.tostring(target, method="c14n")).digest()).decode()
    data = etree.tostring(signed_info, method="c14n")
    method = ds(signed_info, "ds:SignatureMethod").get("Algorithm")
    if method in (RSA_SHA1, RSA_SHA256):
        value = pair.key.sign(data, padding.PKCS1v15(), hashes.SHA1() if method == RSA_SHA1 else hashes.SHA256())
    else:
        r, s = decode_dss_signature(pair.key.sign(data, ec.ECDSA(hashes.SHA256())))
        value = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    ds(signature, "ds:SignatureValue").text = base64.b64encode(value).decode()


# --------------------------------------------------------------------------- what VENs sign

OL_SETTINGS = settings(max_examples=10, deadline=None, database=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("kind", ["rsa", "ecc"])
@pytest.mark.parametrize("message_type", ["oadrPoll", "oadrCreatedEvent", "oadrUpdateReport", "oadrRegisterReport"])
@OL_SETTINGS
@given(data=st.data())
def test_what_openleadr_signs_verifies(pki, kind, message_type, data):
    strategy, expect = CASES[message_type]
    payload = data.draw(strategy, label="payload")
    pair = pki[kind]
    before = datetime.now(timezone.utc)
    body = ol_signed(pair, message_type, **_for_openleadr(payload))
    envelope = parse(body)
    assert envelope.message == expect(payload)  # signed, the message reads the same

    result = verify(envelope.tree)

    assert result.fingerprint == pair.fingerprint == ol_utils.certificate_fingerprint(pair.cert_pem.decode())
    document = etree.fromstring(body)
    assert result.nonce == document.findtext(".//dsp:nonce", namespaces=NS)
    assert result.timestamp == ol_utils.parse_datetime(document.findtext(".//dsp:timestamp", namespaces=NS))
    assert result.timestamp.tzinfo is not None
    assert before - timedelta(seconds=1) <= result.timestamp <= datetime.now(timezone.utc)


def test_each_signed_message_has_its_own_nonce(pki):
    first, second = (verify(tree_of(ol_signed(pki["ecc"]))) for _ in range(2))
    assert first.nonce != second.nonce and first.fingerprint == second.fingerprint


def signxml_signed(pair: Pair, c14n: str, **payload) -> bytes:
    """openleadr's create_message, but with another canonicalization (as another VEN might sign)."""
    unsigned = create_message("oadrPoll", **payload)
    signed_object = etree.tostring(etree.fromstring(unsigned.encode())[0])
    signer = XMLSigner(method=methods.detached, c14n_algorithm=c14n)
    signer.namespaces["oadr"] = NS["oadr"]
    signer.sign_alg = SignatureMethod.from_fragment("ecdsa-sha256")
    el = etree.Element(f"{{{DSP}}}ReplayProtect", nsmap={"dsp": DSP})
    etree.SubElement(el, f"{{{DSP}}}timestamp").text = "2030-01-02T03:04:05.678Z"
    etree.SubElement(el, f"{{{DSP}}}nonce").text = "nonce-exclusive"
    signature = signer.sign(etree.fromstring(signed_object), key=pair.key_pem, cert=pair.cert_pem,
                            reference_uri="#oadrSignedObject", signature_properties=el)
    return (b'<?xml version="1.0" encoding="utf-8"?>\n<oadr:oadrPayload xmlns:oadr="' + NS["oadr"].encode() + b'">'
            + etree.tostring(signature) + signed_object + b"</oadr:oadrPayload>")


def test_exclusive_canonicalization_verifies(pki):
    body = signxml_signed(pki["ecc"], EXC_C14N, ven_id="ven-1")
    assert EXC_C14N.encode() in body and C14N.encode() not in body
    result = verify(tree_of(body))
    assert result.fingerprint == pki["ecc"].fingerprint and result.nonce == "nonce-exclusive"
    assert result.timestamp == datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def test_an_unsigned_message_is_refused(pki):
    envelope = parse(create_message("oadrPoll", ven_id="ven-1").encode())
    assert envelope.signature is None
    with pytest.raises(SignatureInvalid):
        verify(envelope.tree)
    with pytest.raises(SignatureInvalid):
        verify(etree.fromstring(create_message("oadrPoll", ven_id="ven-1").encode()))


# --------------------------------------------------------------------------- tampering


@pytest.mark.parametrize("kind", ["rsa", "ecc"])
def test_a_changed_signed_object_is_refused(pki, kind):
    tree = tree_of(ol_signed(pki[kind], ven_id="ven-1"))
    tree.find(".//ei:venID", NS).text = "ven-2"
    refused(tree)


@pytest.mark.parametrize("part", ["dsp:nonce", "dsp:timestamp"])
def test_a_changed_replay_protect_is_refused(pki, part):
    tree = tree_of(ol_signed(pki["ecc"]))
    el = tree.find(f".//{part}", NS)
    el.text = "2031-01-01T00:00:00Z" if part == "dsp:timestamp" else "0" * 32
    refused(tree)


@pytest.mark.parametrize("kind, other", [("ecc", "ecc2"), ("ecc", "rsa"), ("rsa", "ecc")])
def test_a_swapped_certificate_is_refused(pki, kind, other):
    tree = tree_of(ol_signed(pki[kind]))
    der = x509.load_pem_x509_certificate(pki[other].cert_pem).public_bytes(serialization.Encoding.DER)
    tree.find(".//ds:X509Certificate", NS).text = base64.b64encode(der).decode()
    refused(tree)


def test_a_changed_signature_value_is_refused(pki):
    for kind in ("rsa", "ecc"):
        tree = tree_of(ol_signed(pki[kind]))
        el = tree.find(".//ds:SignatureValue", NS)
        value = bytearray(base64.b64decode(el.text))
        value[len(value) // 2] ^= 1
        el.text = base64.b64encode(bytes(value)).decode()
        refused(tree)
        el.text = base64.b64encode(bytes(value[:-1])).decode()  # an ECDSA r||s one byte short, an RSA one too
        refused(tree)


@pytest.mark.parametrize("path", ["ds:SignedInfo/ds:Reference/ds:DigestValue", "ds:SignatureValue",
                                  "ds:KeyInfo/ds:X509Data/ds:X509Certificate"])
def test_garbage_in_base64_fields_is_signature_invalid(pki, path):
    tree = tree_of(ol_signed(pki["ecc"]))
    ds(tree[0], path).text = "not base64!"
    refused(tree)


def test_a_certificate_that_is_not_one_is_refused(pki):
    tree = tree_of(ol_signed(pki["ecc"]))
    ds(tree[0], "ds:KeyInfo/ds:X509Data/ds:X509Certificate").text = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
    refused(tree)


def test_missing_key_info_is_refused(pki):
    tree = tree_of(ol_signed(pki["ecc"]))
    signature = tree[0]
    signature.remove(ds(signature, "ds:KeyInfo"))  # KeyInfo is not signed: the signature is otherwise intact
    refused(tree)


# --------------------------------------------------------------------------- algorithms


def test_resign_is_a_faithful_signer(pki):
    """The control for every test that re-signs: an unchanged document re-signed verifies."""
    for kind in ("rsa", "ecc"):
        tree = tree_of(ol_signed(pki[kind]))
        resign(tree, pki[kind])
        assert verify(etree.fromstring(etree.tostring(tree))).fingerprint == pki[kind].fingerprint


def test_sha1_is_refused_even_when_correctly_signed(pki):
    tree = tree_of(ol_signed(pki["rsa"]))
    ds(tree[0], "ds:SignedInfo/ds:SignatureMethod").set("Algorithm", RSA_SHA1)
    resign(tree, pki["rsa"])
    assert "sha1" in refused(tree).detail

    tree = tree_of(ol_signed(pki["rsa"]))
    for method in tree[0].iterfind(".//ds:DigestMethod", NS):
        method.set("Algorithm", SHA1)
    resign(tree, pki["rsa"])
    assert "digest method" in refused(tree).detail


@pytest.mark.parametrize("algorithm", [C14N + "#WithComments", "http://www.w3.org/2006/12/xml-c14n11",
                                       "http://www.w3.org/2000/09/xmldsig#base64"])
def test_other_canonicalizations_are_refused(pki, algorithm):
    tree = tree_of(ol_signed(pki["ecc"]))
    ds(tree[0], "ds:SignedInfo/ds:CanonicalizationMethod").set("Algorithm", algorithm)
    resign(tree, pki["ecc"])  # signed over the inclusive form; the named algorithm is what is refused
    assert "canonicalization" in refused(tree).detail

    tree = tree_of(ol_signed(pki["ecc"]))
    ds(tree[0], "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform").set("Algorithm", algorithm)
    resign(tree, pki["ecc"])
    refused(tree)


def test_a_signature_method_that_does_not_fit_the_key_is_refused(pki):
    tree = tree_of(ol_signed(pki["ecc"]))
    ds(tree[0], "ds:SignedInfo/ds:SignatureMethod").set("Algorithm", RSA_SHA256)
    refused(tree)
    tree = tree_of(ol_signed(pki["ecc"]))
    ds(tree[0], "ds:SignedInfo/ds:SignatureMethod").set("Algorithm", "http://www.w3.org/2000/09/xmldsig#hmac-sha1")
    refused(tree)


# --------------------------------------------------------------------------- what is referenced


def _reference(tree, uri: str):
    return next(r for r in tree[0].iterfind("ds:SignedInfo/ds:Reference", NS) if r.get("URI") == uri)


def _properties_uri(tree) -> str:
    return "#" + tree[0].find("ds:Object", NS).get("Id")


def test_a_third_reference_is_refused(pki):
    tree = tree_of(ol_signed(pki["ecc"]))
    key_info = ds(tree[0], "ds:KeyInfo")
    key_info.set("Id", "keyinfo")
    extra = copy.deepcopy(_reference(tree, "#oadrSignedObject"))
    extra.set("URI", "#keyinfo")
    ds(tree[0], "ds:SignedInfo").append(extra)
    resign(tree, pki["ecc"])
    assert "references" in refused(tree).detail


@pytest.mark.parametrize("uri", ["", "#xpointer(/)", "http://example.com/x", "#nowhere"])
def test_a_reference_that_is_not_a_local_id_is_refused(pki, uri):
    tree = tree_of(ol_signed(pki["ecc"]))
    _reference(tree, _properties_uri(tree)).set("URI", uri)
    if uri == "":  # the whole document: re-signed, so only the reference itself is wrong
        resign(tree, pki["ecc"])
    refused(tree)


def test_the_replay_protect_reference_must_reach_the_replay_protect(pki):
    # Pointing the second reference at the message itself: both references are then to signed
    # content, and the ReplayProtect is unsigned (its nonce could be anything).
    tree = tree_of(ol_signed(pki["ecc"]))
    poll = tree[1][0]
    poll.set("Id", "poll")
    _reference(tree, _properties_uri(tree)).set("URI", "#poll")
    resign(tree, pki["ecc"])
    refused(tree)


def test_a_missing_replay_protect_is_refused(pki):
    tree = tree_of(ol_signed(pki["ecc"]))
    signature = tree[0]
    ds(signature, "ds:SignedInfo").remove(_reference(tree, _properties_uri(tree)))
    signature.remove(ds(signature, "ds:Object"))
    resign(tree, pki["ecc"])
    assert "references" in refused(tree).detail


def test_a_replay_protect_outside_what_is_signed_is_refused(pki):
    # A second ds:Object with another ReplayProtect, not referenced: which nonce counts?
    tree = tree_of(ol_signed(pki["ecc"]))
    signature = tree[0]
    extra = copy.deepcopy(ds(signature, "ds:Object"))
    extra.set("Id", "other")
    extra.find(".//dsp:nonce", NS).text = "unsigned"
    signature.append(extra)
    resign(tree, pki["ecc"])
    refused(tree)


def test_a_referenced_object_without_the_replay_protect_is_refused(pki):
    tree = tree_of(ol_signed(pki["ecc"]))
    signature = tree[0]
    etree.SubElement(signature, f"{{{DS}}}Object", Id="empty")
    _reference(tree, _properties_uri(tree)).set("URI", "#empty")
    resign(tree, pki["ecc"])
    refused(tree)


# --------------------------------------------------------------------------- signature wrapping


def test_a_signed_object_moved_away_is_refused(pki):
    """The captured signature's signed object is tucked into a ds:Object; the payload carries
    another one (no Id) that the reader would read. The reference still finds a matching digest."""
    tree = tree_of(ol_signed(pki["ecc"], ven_id="ven-1"))
    signature, original = tree[0], tree[1]
    forged = copy.deepcopy(original)
    del forged.attrib[f"{{{NS['oadr']}}}Id"]
    forged.find(".//ei:venID", NS).text = "victim"
    etree.SubElement(signature, f"{{{DS}}}Object").append(original)
    tree.append(forged)
    assert len(tree) == 2 and tree[1].find(".//ei:venID", NS).text == "victim"
    refused(tree)


def test_a_duplicated_id_is_refused(pki):
    """The payload's signed object is the signed one, but its Id also names a copy elsewhere:
    another implementation might have digested the copy."""
    tree = tree_of(ol_signed(pki["ecc"]))
    etree.SubElement(tree[0], f"{{{DS}}}Object").append(copy.deepcopy(tree[1]))
    assert "matches 2" in refused(tree).detail


def test_an_id_moved_into_the_signed_object_is_refused(pki):
    tree = tree_of(ol_signed(pki["ecc"]))
    signed_object = tree[1]
    del signed_object.attrib[f"{{{NS['oadr']}}}Id"]
    signed_object[0].set("Id", "oadrSignedObject")  # the oadrPoll inside now bears the Id
    resign(tree, pki["ecc"])
    refused(tree)


def test_an_extra_element_in_the_payload_is_refused(pki):
    tree = tree_of(ol_signed(pki["ecc"]))
    tree.append(copy.deepcopy(tree[1]))
    refused(tree)


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(data=st.data())
def test_any_edit_is_refused_or_leaves_what_is_signed_intact(pki, data):
    """One character of a signed message replaced: verify either refuses it with SignatureInvalid
    (never another exception), or the edit touched nothing signed (whitespace in base64, the
    certificate's own signature, ...) and the signer's key is the same."""
    body = ORIGINALS.setdefault("ecc", ol_signed(pki["ecc"]))
    at = data.draw(st.integers(body.index(b"<ds:Signature"), len(body) - 1), label="position")
    replacement = data.draw(st.sampled_from(b"aZ09+/= \n<>\"'#:xX"), label="replacement")
    assume(body[at] != replacement)
    edited = body[:at] + bytes([replacement]) + body[at + 1:]
    try:
        tree = etree.fromstring(edited)
    except etree.XMLSyntaxError:
        assume(False)
    original = etree.fromstring(body)
    try:
        result = verify(tree)
    except SignatureInvalid:
        return
    assert etree.tostring(tree[1], method="c14n") == etree.tostring(original[1], method="c14n")
    assert result.nonce == original.findtext(".//dsp:nonce", namespaces=NS)
    # The fingerprint reported is the certificate's in the document, whose key is the signer's.
    der = base64.b64decode(tree.findtext(".//ds:X509Certificate", namespaces=NS))
    assert result.fingerprint == fingerprint_of_der(der)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert x509.load_der_x509_certificate(der).public_key().public_bytes(*spki) == \
        pki["ecc"].key.public_key().public_bytes(*spki)


ORIGINALS: dict[str, bytes] = {}


# --------------------------------------------------------------------------- what we sign


def _event_message() -> bytes:
    start = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    parts = render.EventParts(event_id="event-1", modification_number=2, created_at=start, status="far",
                              start_at=start + timedelta(hours=1), duration=timedelta(hours=1),
                              signals=[render.EventSignal("simple", "level", "signal-1",
                                                          [(timedelta(minutes=30), 1.0), (timedelta(minutes=30), 2.0)],
                                                          0.0)],
                              market_context="http://market.example.com", vtn_comment="a & b < c")
    return render.distribute_event("VTN-1", [render.event(parts).for_ven("ven-1")], request_id="r-1")


OUR_MESSAGES = {
    "poll_ok": lambda: render.poll_ok("ven-1"),
    "created_party_registration": lambda: render.created_party_registration(
        m.EiResponse(200, "OK", "req-1"), "VTN-1", registration_id="reg-1", ven_id="ven-1",
        poll_freq=timedelta(seconds=10)),
    "distribute_event": _event_message,
}


@pytest.mark.parametrize("kind", ["rsa", "ecc"])
@pytest.mark.parametrize("name", list(OUR_MESSAGES))
def test_what_we_sign_passes_openleadr_and_our_checks(pki, kind, name):
    pair = pki[kind]
    signer = Signer.from_files(pair.cert_path, pair.key_path)
    assert signer.fingerprint == pair.fingerprint
    body = OUR_MESSAGES[name]()
    now = datetime.now(timezone.utc)
    signed = signer.sign(body, now=now)

    schema().assertValid(etree.fromstring(signed))
    assert b"schemaLocation" not in signed
    # What openleadr's VEN does with a VTN's answer when it knows the VTN's fingerprint.
    tree = validate_xml_schema(signed)
    validate_xml_signature(tree, cert_fingerprint=pair.fingerprint)
    assert parse_message(signed) == parse_message(body)
    with pytest.raises(ol_errors.FingerprintMismatch):
        validate_xml_signature(validate_xml_schema(signed), cert_fingerprint=pki["ecc2"].fingerprint)

    result = verify(etree.fromstring(signed))
    assert result.fingerprint == pair.fingerprint
    assert result.timestamp == now
    assert len(result.nonce) == 32


def test_each_message_we_sign_has_its_own_nonce(pki):
    signer = Signer.from_files(pki["ecc"].cert_path, pki["ecc"].key_path)
    body = render.poll_ok("ven-1")
    nonces = {verify(etree.fromstring(signer.sign(body))).nonce for _ in range(5)}
    assert len(nonces) == 5


def _rendered():
    """Every VTN message the renderer writes, with generated content."""
    optional = lambda s: st.one_of(st.none(), s)  # noqa: E731
    return st.one_of(
        st.builds(render.poll_ok, poll_ven_ids),
        st.builds(render.response, ei_responses, optional(text)),
        st.builds(lambda r, vtn, reg, ven, offered: render.created_party_registration(
            r, vtn, registration_id=reg, ven_id=ven, profiles=offered),
            ei_responses, text, optional(text), optional(text), profiles),
        st.builds(render.canceled_party_registration, ei_responses, optional(text), optional(text)),
        st.builds(render.cancel_party_registration, text, text, optional(text)),
        st.builds(render.request_reregistration, text),
        st.builds(lambda events, ven, vtn: render.distribute_event(vtn, [render.event(p).for_ven(ven) for p in events]),
                  st.lists(event_parts(), max_size=3), text, text),
        st.builds(render.registered_report, ei_responses, st.lists(report_requests(), max_size=2), optional(text)),
        st.builds(render.create_report, st.lists(report_requests(), min_size=1, max_size=2), optional(text)),
        st.builds(render.cancel_report, st.lists(text, min_size=1, max_size=2), st.booleans(), optional(text)),
        st.builds(render.updated_report, ei_responses, optional(text)),
        st.builds(render.created_report, ei_responses, st.lists(text, max_size=2), optional(text)),
        st.builds(render.canceled_report, ei_responses, st.lists(text, max_size=2), optional(text)),
        st.builds(render.created_opt, ei_responses, text),
        st.builds(render.canceled_opt, ei_responses, optional(text)),
    )


@pytest.mark.parametrize("kind", ["rsa", "ecc"])
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=_rendered())
def test_every_rendered_message_signs_and_verifies(pki, kind, body):
    pair = pki[kind]
    signer = SIGNERS.get(kind) or SIGNERS.setdefault(kind, Signer.from_files(pair.cert_path, pair.key_path))
    signed = signer.sign(body)
    tree = etree.fromstring(signed)
    schema().assertValid(tree)
    # What is signed is exactly what was rendered.
    assert etree.tostring(tree[1], method="c14n") == etree.tostring(etree.fromstring(body)[-1], method="c14n")
    assert verify(tree).fingerprint == pair.fingerprint
    validate_xml_signature(validate_xml_schema(signed), cert_fingerprint=pair.fingerprint)


SIGNERS: dict[str, Signer] = {}


@pytest.mark.parametrize("description", ["line\rbreak", "windows\r\nline", "\r", "tab\tand\nnewline"])
def test_text_the_parser_normalizes_is_signed_as_read(pki, description):
    # A parser reads \r as \n: what a verifier canonicalizes differs from the rendered string.
    signer = Signer.from_files(pki["ecc"].cert_path, pki["ecc"].key_path)
    signed = signer.sign(render.response(m.EiResponse(200, description, "req-1"), "ven-1"))
    assert verify(etree.fromstring(signed)).fingerprint == pki["ecc"].fingerprint
    validate_xml_signature(validate_xml_schema(signed), cert_fingerprint=pki["ecc"].fingerprint)


def test_only_rendered_messages_are_signed(pki):
    signer = Signer.from_files(pki["ecc"].cert_path, pki["ecc"].key_path)
    with pytest.raises(ValueError):
        signer.sign(create_message("oadrResponse", response=RESPONSE, ven_id="ven-1").encode())
    with pytest.raises(ValueError):
        signer.sign(signer.sign(render.poll_ok("ven-1")))  # already signed


def test_a_key_that_is_not_the_certificates_is_refused(pki):
    with pytest.raises(ValueError, match="does not belong"):
        Signer.from_files(pki["ecc"].cert_path, pki["ecc2"].key_path)
    with pytest.raises(ValueError, match="does not belong"):
        Signer.from_files(pki["rsa"].cert_path, pki["ecc"].key_path)
