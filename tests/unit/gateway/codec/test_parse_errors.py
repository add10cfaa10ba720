"""What parse refuses, and how: HostileXml before any parser runs, MalformedXml for what is not a
2.0b message a VTN reads, InvalidContent for a valid message with a value we cannot use."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from openleadr.messaging import create_message
from signxml import XMLVerifier

from adrstack.gateway.codec import HostileXml, InvalidContent, MalformedXml, parse, render
from adrstack.gateway.codec import model as m
from adrstack.gateway.codec.names import SIGNATURE, SIGNED_OBJECT
from adrstack.gateway.codec.schema import schema

# The module, not the function the package exports under the same name.
parse_module = importlib.import_module("adrstack.gateway.codec.reader")

OADR = "http://openadr.org/oadr-2.0b/2012/07"
EI = "http://docs.oasis-open.org/ns/energyinterop/201110"


def poll(ven_id: str = "ven-1", *, payload_ns: str = OADR, message_ns: str = OADR, prolog: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n{prolog}<oadr:oadrPayload xmlns:oadr="{payload_ns}">'
            f'<oadr:oadrSignedObject xmlns:o="{message_ns}"><o:oadrPoll xmlns:ei="{EI}" ei:schemaVersion="2.0b">'
            f"<ei:venID>{ven_id}</ei:venID></o:oadrPoll></oadr:oadrSignedObject></oadr:oadrPayload>").encode()


POLL = poll()

# The generic texts MalformedXml carries (safe to send back): no parser output in them.
GENERIC = {"not well-formed XML", "not valid against the OpenADR 2.0b schema",
           "the root element must be oadr:oadrPayload", "a VTN does not accept this message"}


def malformed(body: bytes) -> MalformedXml:
    with pytest.raises(MalformedXml) as e:
        parse(body)
    error = e.value
    assert str(error) in GENERIC
    assert error.detail and error.detail not in str(error)
    return error


def test_the_base_message_is_fine():
    assert parse(POLL).message == m.Poll("ven-1")


# --------------------------------------------------------------------------- not well-formed


@settings(max_examples=100, deadline=None, database=None)
@given(end=st.integers(0, len(POLL) - 1))
def test_truncated_xml(end):
    error = malformed(POLL[:end])
    assert str(error) == "not well-formed XML"


def test_parser_text_stays_in_detail():
    error = malformed(POLL.replace(b"</ei:venID>", b"</ei:venId>"))
    assert str(error) == "not well-formed XML"
    assert "venId" in error.detail and "venId" not in str(error)
    error = malformed(poll("<ei:extra/>"))  # well-formed, schema-invalid
    assert str(error) == "not valid against the OpenADR 2.0b schema"
    assert "venID" in error.detail and "venID" not in str(error)


def test_non_utf8_bytes_are_malformed():
    error = malformed(poll("caf\u00e9").replace("caf\u00e9".encode(), "caf\u00e9".encode("latin-1")))
    assert str(error) == "not well-formed XML"


@pytest.mark.parametrize("body", [
    POLL.decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16"),
    b"\xfe\xff" + POLL.decode().encode("utf-16-be"),
    POLL.replace(b'encoding="utf-8"', b'encoding="ISO-8859-1"'),
    POLL.replace(b"ven-1", b"ven\x00"),
], ids=["utf-16", "utf-16-be-bom", "declared-latin-1", "nul-byte"])
def test_foreign_encodings_are_hostile(body):
    with pytest.raises(HostileXml, match="UTF-8"):
        parse(body)


def test_deep_nesting_is_refused_by_the_parser():
    deep = "<a>" * 300 + "x" + "</a>" * 300
    error = malformed(poll(deep))
    assert str(error) == "not well-formed XML"  # libxml2's depth limit, before the schema is asked
    assert "depth" in error.detail.lower()


# --------------------------------------------------------------------------- DTDs and entities

HOSTILE = [
    # With lxml 6 this one crashes a validating parser (SIGSEGV): it must never get there.
    poll("&a;", prolog='<!DOCTYPE x [<!ENTITY a "b">]>'),
    poll("&lol3;", prolog='<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
                          '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]>'),
    poll("&xxe;", prolog='<!DOCTYPE oadrPayload [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
    poll(prolog='<!DOCTYPE oadrPayload SYSTEM "http://example.invalid/x.dtd">'),
    poll(prolog='<!doctype oadrPayload [<!ENTITY % p SYSTEM "http://example.invalid/p.dtd"> %p;]>'),
    b"\xef\xbb\xbf  \r\n" + poll(prolog="<!DocType x>").replace(b'<?xml version="1.0" encoding="utf-8"?>\n', b""),
    poll().replace(b"</oadr:oadrPayload>", b'</oadr:oadrPayload><!ENTITY a "b">'),
]


@pytest.mark.parametrize("body", HOSTILE, ids=["entity-in-venid", "billion-laughs", "external-entity",
                                               "external-dtd", "parameter-entity", "bom-mixed-case",
                                               "entity-after-root"])
def test_dtds_and_entities_never_reach_lxml(body, monkeypatch):
    def no_parser():
        raise AssertionError("lxml was asked to parse a DTD")

    monkeypatch.setattr(parse_module, "_xml_parser", no_parser)
    with pytest.raises(HostileXml) as e:
        parse(body)
    assert str(e.value) in ("XML with a DOCTYPE is not accepted", "XML with an ENTITY declaration is not accepted")


def test_markup_lookalikes_in_text_are_not_hostile():
    # Escaped in text, "<!DOCTYPE" is just characters: the guard must not refuse it.
    assert parse(poll("&lt;!DOCTYPE x&gt; &amp;a;")).message == m.Poll("<!DOCTYPE x> &a;")


# --------------------------------------------------------------------------- not an oadrPayload


def test_wrong_namespace_of_the_root():
    error = malformed(poll(payload_ns="http://openadr.org/oadr-2.0a/2012/07"))
    assert str(error) == "the root element must be oadr:oadrPayload"


def test_wrong_namespace_of_the_message():
    error = malformed(poll(message_ns="http://openadr.org/oadr-2.0a/2012/07"))
    assert str(error) == "not valid against the OpenADR 2.0b schema"


@pytest.mark.parametrize("body", [
    f'<oadr:oadrPoll xmlns:oadr="{OADR}" xmlns:ei="{EI}" ei:schemaVersion="2.0b"><ei:venID>v</ei:venID>'
    "</oadr:oadrPoll>",
    f'<ei:eiResponse xmlns:ei="{EI}" xmlns:pyld="{EI}/payloads"><ei:responseCode>200</ei:responseCode>'
    "<pyld:requestID>r</pyld:requestID></ei:eiResponse>",
], ids=["bare-oadrPoll", "bare-eiResponse"])
def test_a_schema_valid_document_that_is_not_an_oadr_payload(body):
    assert schema().validate(etree.fromstring(body.encode()))  # the XSD alone would let it through
    error = malformed(body.encode())
    assert str(error) == "the root element must be oadr:oadrPayload"


_OK = m.EiResponse(200, "OK", "r")


@pytest.mark.parametrize("message_type,body", [
    ("oadrDistributeEvent", render.distribute_event("vtn", [])),
    ("oadrCreatedPartyRegistration", render.created_party_registration(_OK, "vtn")),
    ("oadrRequestReregistration", render.request_reregistration("v")),
    ("oadrUpdatedReport", render.updated_report(_OK)),
    ("oadrCreatedOpt", render.created_opt(_OK, "o")),
    ("oadrCanceledOpt", render.canceled_opt(_OK)),
])
def test_messages_only_a_vtn_sends_are_refused(message_type, body):
    error = malformed(body)
    assert str(error) == "a VTN does not accept this message"
    assert error.detail == message_type


# --------------------------------------------------------------------------- invalid content

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
_UPDATE = {"request_id": "req-7", "ven_id": "ven-7", "reports": [{
    "report_id": "rep", "report_request_id": "rr", "report_specifier_id": "spec", "report_name": "TELEMETRY_USAGE",
    "created_date_time": T0, "dtstart": T0,
    "intervals": [{"dtstart": T0, "duration": timedelta(minutes=5), "report_payload": {"r_id": "p1", "value": 1.5}}]}]}


def update_report() -> str:
    return create_message("oadrUpdateReport", **_UPDATE)


def test_the_base_update_report_is_fine():
    [report] = parse(update_report().encode()).message.reports
    assert report.intervals[0].payloads == [m.ReportPayload("p1", 1.5)]


@pytest.mark.parametrize("old,new,what", [
    ("<ei:value>1.5</ei:value>", "<ei:value>" + "9" * 400 + "</ei:value>", "value"),
    ("<ei:value>1.5</ei:value>", "<ei:value>INF</ei:value>", "value"),
    ("<ei:value>1.5</ei:value>", "<ei:value>1e999</ei:value>", "value"),
    ("<ei:createdDateTime>2030-01-02T03:04:05.000000Z", "<ei:createdDateTime>9999-01-02T03:04:05Z", "createdDateTime"),
    ("<ei:createdDateTime>2030-01-02T03:04:05.000000Z", "<ei:createdDateTime>2030-01-02T03:04:05", "createdDateTime"),
    ("<xcal:duration>PT5M</xcal:duration>", "<xcal:duration>P</xcal:duration>", "duration"),
    ("<xcal:duration>PT5M</xcal:duration>", "<xcal:duration>-PT5M</xcal:duration>", "duration"),
    ("<xcal:duration>PT5M</xcal:duration>", "<xcal:duration>P99999999Y</xcal:duration>", "duration"),
], ids=["400-digits", "INF", "1e999", "year-9999", "zone-less", "empty-P", "negative", "overflowing"])
def test_values_we_cannot_use(old, new, what):
    xml = update_report()
    assert old in xml
    body = xml.replace(old, new, 1).encode()
    assert schema().validate(etree.fromstring(body))  # schema-valid: the codec's own check refuses it
    with pytest.raises(InvalidContent) as e:
        parse(body)
    error = e.value
    assert (error.message_type, error.request_id, error.ven_id) == ("oadrUpdateReport", "req-7", "ven-7")
    assert what in error.description and str(error) == error.description


_FRAGMENTS = [b"<", b">", b"/", b"&", b";", b'"', b"'", b" ", b"0", b"9", b"-", b"+", b".", b"e", b"P", b"T", b"Z",
              b"W", b"INF", b"NaN", b"24:00:00", b"9999", b"\xff", b"\xc3", b"<!", b"&amp;", b"<x>", b"</x>"]


@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data())
def test_corrupted_messages_fail_only_in_the_documented_ways(data):
    body = bytearray(update_report().encode())
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        start = data.draw(st.integers(0, len(body)), label="start")
        end = data.draw(st.integers(start, min(len(body), start + 6)), label="end")
        body[start:end] = b"".join(data.draw(st.lists(st.sampled_from(_FRAGMENTS), max_size=4), label="insert"))
    try:
        parse(bytes(body))
    except HostileXml:
        pass
    except MalformedXml as e:
        assert str(e) in GENERIC and e.detail
    except InvalidContent as e:
        assert e.message_type == "oadrUpdateReport" and e.description


def test_every_unsigned_int_form_the_schema_allows_is_read():
    # '+7' and '0007' are xs:unsignedInt like '7': a usable value, not a 454.
    body = create_message("oadrRequestEvent", request_id="r", ven_id="v", reply_limit=7)
    assert "<replyLimit>7</replyLimit>" in body
    for form in ("+7", "0007", "+00000000000000000007"):
        assert parse(body.replace(">7<", f">{form}<").encode()).message == m.RequestEvent("r", "v", 7)


def test_month_13_is_refused_by_the_schema():
    xml = update_report().replace("<ei:createdDateTime>2030-01-", "<ei:createdDateTime>2030-13-", 1)
    error = malformed(xml.encode())
    assert str(error) == "not valid against the OpenADR 2.0b schema"


def test_invalid_content_in_an_opt_carries_the_opt_id():
    body = create_message(
        "oadrCreateOpt", opt_id="opt-9", opt_type="optOut", opt_reason="economic", ven_id="ven-9",
        created_date_time=T0, request_id="req-9", event_id="ev", modification_number=0,
        vavailability={"components": [{"dtstart": T0, "duration": timedelta(hours=1)}]},
    ).replace("<xcal:duration>PT1H</xcal:duration>", "<xcal:duration>PT</xcal:duration>").encode()
    with pytest.raises(InvalidContent) as e:
        parse(body)
    assert (e.value.message_type, e.value.request_id, e.value.ven_id, e.value.opt_id) == \
        ("oadrCreateOpt", "req-9", "ven-9", "opt-9")


# --------------------------------------------------------------------------- signatures


@pytest.fixture(scope="module")
def cert_and_key() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ven.test")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_a_signed_message_parses_and_keeps_its_signature(cert_and_key):
    cert, key = cert_and_key
    body = create_message("oadrPoll", cert=cert, key=key, ven_id="ven &amp; co").encode()
    envelope = parse(body)
    assert envelope.message == m.Poll("ven & co")
    assert envelope.signature is not None and envelope.signature.tag == SIGNATURE
    assert envelope.signature.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue").text
    # The kept tree is the one the signature covers: it verifies as it is.
    [result, *_] = XMLVerifier().verify(envelope.tree, x509_cert=cert.decode(), expect_references=2)
    assert result.signed_xml.tag == SIGNED_OBJECT


def test_an_unsigned_message_keeps_no_tree_unless_asked():
    assert parse(POLL).tree is None and parse(POLL).signature is None
    assert parse(POLL, keep_tree=True).tree is not None
