"""The 2.0b XML namespaces and the qualified tag names the codec reads."""

from __future__ import annotations

OADR = "http://openadr.org/oadr-2.0b/2012/07"
EI = "http://docs.oasis-open.org/ns/energyinterop/201110"
PYLD = "http://docs.oasis-open.org/ns/energyinterop/201110/payloads"
EMIX = "http://docs.oasis-open.org/ns/emix/2011/06"
XCAL = "urn:ietf:params:xml:ns:icalendar-2.0"
STRM = "urn:ietf:params:xml:ns:icalendar-2.0:stream"
POWER = "http://docs.oasis-open.org/ns/emix/2011/06/power"
SCALE = "http://docs.oasis-open.org/ns/emix/2011/06/siscale"
DS = "http://www.w3.org/2000/09/xmldsig#"

# Every prefix the renderer uses, declared once on the root element.
PREFIXES = {"oadr": OADR, "ei": EI, "pyld": PYLD, "emix": EMIX, "xcal": XCAL, "strm": STRM,
            "power": POWER, "scale": SCALE}


def oadr(name: str) -> str:
    return f"{{{OADR}}}{name}"


def ei(name: str) -> str:
    return f"{{{EI}}}{name}"


def pyld(name: str) -> str:
    return f"{{{PYLD}}}{name}"


def xcal(name: str) -> str:
    return f"{{{XCAL}}}{name}"


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


PAYLOAD = oadr("oadrPayload")
SIGNED_OBJECT = oadr("oadrSignedObject")
SIGNATURE = f"{{{DS}}}Signature"
