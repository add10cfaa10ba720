"""Refuse XML that could reach libxml2's DTD machinery before any parser sees it.

With lxml 6 a document carrying an internal DTD that declares an entity can crash a
validating parser (SIGSEGV, seen with openleadr's), and entity expansion is a classic
memory bomb; our parser disables both, and this byte check keeps DTDs from reaching it
at all. OpenADR 2.0b never needs a DOCTYPE, so refusing every one is safe.
"""

from __future__ import annotations

import re

_UTF8_BOM = b"\xef\xbb\xbf"
# BOMs of encodings whose bytes would hide "<!DOCTYPE" from a byte search.
_FOREIGN_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\bencoding\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_UTF8_NAMES = {b"utf-8", b"utf8"}


class HostileXml(ValueError):
    """The body must not be parsed; the message says why (safe to send back)."""


def check_xml(body: bytes) -> None:
    """Raise HostileXml unless ``body`` is UTF-8 XML without any DTD or entity declaration.

    Invalid UTF-8 itself is left to the parser, which refuses it."""
    if body.startswith(_FOREIGN_BOMS) or b"\x00" in body:
        raise HostileXml("XML must be UTF-8 encoded")
    text = body[len(_UTF8_BOM):] if body.startswith(_UTF8_BOM) else body
    m = _DECLARED_ENCODING.match(text)
    # A declared non-UTF-8 encoding (UTF-7, EBCDIC...) would let a DOCTYPE through in disguise.
    if m and m.group(1).strip().lower() not in _UTF8_NAMES:
        raise HostileXml("XML must be UTF-8 encoded")
    # In UTF-8 the bytes of '<!' never occur inside a multi-byte character, so a document
    # without them (every ordinary 2.0b message) cannot declare anything.
    if b"<!" not in text:
        return
    lowered = text.lower()
    if b"<!doctype" in lowered:
        raise HostileXml("XML with a DOCTYPE is not accepted")
    if b"<!entity" in lowered:
        raise HostileXml("XML with an ENTITY declaration is not accepted")
