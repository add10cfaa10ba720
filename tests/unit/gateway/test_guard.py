"""The byte-level check that keeps DTDs away from lxml (invalid UTF-8 is the parser's to refuse)."""

from __future__ import annotations

import pytest

from adrstack.gateway.codec.guard import HostileXml, check_xml

OK = b'<?xml version="1.0" encoding="utf-8"?><oadrPayload><x>&amp;&#65;</x></oadrPayload>'


@pytest.mark.parametrize("body", [
    OK,
    b"\xef\xbb\xbf" + OK,
    b"<x>no declaration</x>",
    b'<?xml version="1.0" encoding="UTF8"?><x/>',
    "<x>caf\u00e9 \u2014 not a doctype</x>".encode(),
])
def test_plain_xml_passes(body):
    check_xml(body)


@pytest.mark.parametrize("body", [
    b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
    b'<?xml version="1.0"?>\n<!doctype x SYSTEM "file:///etc/passwd"><x/>',
    b"\xef\xbb\xbf  \r\n\t<!DoCtYpE x><x/>",
    b'<x/><!ENTITY a "b">',
    b'<x><!-- later --></x><!DOCTYPE x>',
])
def test_dtds_and_entities_are_refused(body):
    with pytest.raises(HostileXml):
        check_xml(body)


@pytest.mark.parametrize("body", [
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><x/>'.encode("utf-16"),
    b"\xfe\xff\x00<\x00x\x00/\x00>",
    b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE x+AD4-<x/>',
    b'<?xml version="1.0" encoding="cp037"?><x/>',
    b"<x>\x00</x>",
])
def test_other_encodings_are_refused(body):
    with pytest.raises(HostileXml):
        check_xml(body)
