"""oadrUpdateReport bodies recognised without a parser: the telemetry hot path.

A VEN renders every oadrUpdateReport from one template: the markup is the same each time and only
texts change (its venID, requestIDs, timestamps, values). Once a body has passed the full path
(guard, lxml, XSD, the typed reader) its markup, with every text taken out, is remembered as a
shape, with what each text is. A later body with exactly that markup differs only in its texts:

- a text cannot contain markup (a ``<`` would change the markup), and bodies with ``&`` (entity
  references), ``<!`` (comments, CDATA, DOCTYPE), ``]]>`` or a carriage return (which XML
  rewrites) never take this path, so the document is well-formed and its element structure is
  the one the schema already accepted;
- the texts the schema types loosely (xs:string: ids) are checked to be XML characters; the typed
  ones are held to their lexical form (xcal:DateTimeType's pattern, xs:float) before the same
  value readers as the full path turn them into values; every other text (durations, names,
  units, whitespace between elements) must be byte for byte the one the schema accepted.

So the body is schema-valid by construction and reads to the message the full path would give;
``learn`` checks that on the body it learns from, and gives up on the shape otherwise. Anything
that does not match, or any text a value reader refuses, takes the full path, which answers it as
before. Only unsigned bodies are learned: a signed one keeps its tree for verification, and an
unsigned body read here is still unsigned to MessageAuth (which refuses it when signatures are
required).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Callable

from . import model as m
from .values import EARLIEST, LATEST

_GAP = re.compile(rb">([^<]*)<")
_TAG = re.compile(rb"<([^>]*)>")
# Texts XML does not allow (C0 controls but tab and newline; CR is rewritten by parsers, so it
# takes the full path too) and the two non-characters U+FFFE/U+FFFF, in UTF-8.
_NOT_XML_TEXT = re.compile(rb"[\x00-\x08\x0b-\x1f]|\xef\xbf[\xbe\xbf]")
# xcal:DateTimeType's pattern narrowed to UTC with fraction digits (what parse_datetime reads).
_DATETIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")
# xs:float's lexical space but INF/NaN, which parse_float refuses anyway.
_FLOAT = re.compile(rb"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_FLOAT_MAX = 3.4028234663852886e38  # beyond, xs:float is out of range: left to the schema

_MESSAGE = b":oadrUpdateReport"

# What a text is, by the local names of the elements around it (innermost last).
_ROLES = {
    (b"oadrUpdateReport", b"requestID"): "request_id",
    (b"oadrUpdateReport", b"venID"): "ven_id",
    (b"oadrReport", b"eiReportID"): "report_id",
    (b"oadrReport", b"reportRequestID"): "report_request_id",
    (b"oadrReport", b"reportSpecifierID"): "report_specifier_id",
    (b"oadrReport", b"createdDateTime"): "created_at",
    (b"oadrReport", b"dtstart", b"date-time"): "report_dtstart",
    (b"interval", b"dtstart", b"date-time"): "interval_dtstart",
    (b"oadrReportPayload", b"rID"): "r_id",
    (b"payloadFloat", b"value"): "value",
}
_STRINGS = {"request_id", "ven_id", "report_id", "report_request_id", "report_specifier_id", "r_id"}
_DATETIMES = {"created_at", "report_dtstart", "interval_dtstart"}


def _role(stack: list[bytes]) -> str | None:
    for size in (2, 3):
        role = _ROLES.get(tuple(stack[-size:]))
        if role is not None:
            return role
    return None


# A '|' is in neither lexical form, so one regex over the joined texts checks them all.
_DATETIMES_JOINED = re.compile(_DATETIME.pattern + rb"(?:\|" + _DATETIME.pattern + rb")*")
_FLOATS_JOINED = re.compile(_FLOAT.pattern + rb"(?:\|" + _FLOAT.pattern + rb")*")


def _as_tuple(items) -> tuple:
    return items if isinstance(items, tuple) else (items,)


# A field of the message: (0, -, the learned value) for a constant of the shape, or (kind, the
# text's position among the shape's texts of that kind, -) with kind 1 string, 2 date-time, 3 float.
Field = tuple
CONST, STRING, DATETIME, FLOAT = 0, 1, 2, 3


@dataclass(slots=True)
class _PayloadShape:
    r_id: Field
    value: Field
    confidence: int | None
    accuracy: float | None
    data_quality: str | None


@dataclass(slots=True)
class _IntervalShape:
    dtstart: Field
    duration: object
    uid: str | None
    payloads: list[_PayloadShape]


@dataclass(slots=True)
class _ReportShape:
    report_request_id: Field
    report_specifier_id: Field
    created_at: Field
    report_name: str | None
    report_id: Field
    dtstart: Field
    duration: object
    intervals: list[_IntervalShape]


@dataclass(slots=True)
class _Shape:
    constants: itemgetter | None  # the constant texts of a body
    expected: object
    strings: itemgetter | None  # the texts of each kind, in body order
    datetimes: itemgetter | None
    floats: itemgetter | None
    request_id: Field
    ven_id: Field
    reports: list[_ReportShape]
    make: Callable | None = None

    def values(self, gaps: list[bytes]) -> tuple | None:
        """The texts as values (None: one is not in its lexical form, or not XML text)."""
        strings = datetimes = floats = ()
        if self.strings is not None:
            raw = _as_tuple(self.strings(gaps))
            joined = b"".join(raw)
            if _NOT_XML_TEXT.search(joined) is not None:
                return None
            strings = [t.decode("utf-8") for t in raw]
        if self.datetimes is not None:
            raw = _as_tuple(self.datetimes(gaps))
            if _DATETIMES_JOINED.fullmatch(b"|".join(raw)) is None:
                return None
            datetimes = [datetime.fromisoformat(t.decode("ascii")) for t in raw]
            if not (EARLIEST <= min(datetimes) and max(datetimes) < LATEST):
                return None
        if self.floats is not None:
            raw = _as_tuple(self.floats(gaps))
            if _FLOATS_JOINED.fullmatch(b"|".join(raw)) is None:
                return None
            floats = [float(t) for t in raw]
            if not all(-_FLOAT_MAX <= f <= _FLOAT_MAX for f in floats):
                return None  # infinite, or beyond xs:float: the full path says which
        return (None, strings, datetimes, floats)

    def build(self, values: tuple) -> m.UpdateReport:
        return self.make(values[STRING], values[DATETIME], values[FLOAT])


def _compile(shape: _Shape) -> Callable[[list, list, list], m.UpdateReport]:
    """The shape's message as one expression over its texts' values (S, D, F) and its constants
    (C): built once per shape, it makes the objects without walking the shape for each body. Only
    indices are written into the source; every value is passed in."""
    constants: list = []

    def ref(f: Field) -> str:
        if f[0] == CONST:
            constants.append(f[2])
            return f"C[{len(constants) - 1}]"
        return f"{'_SDF'[f[0]]}[{f[1]}]"

    def const(value) -> str:
        return ref((CONST, 0, value))

    def payload(p: _PayloadShape) -> str:
        return (f"ReportPayload(r_id={ref(p.r_id)}, value={ref(p.value)}, confidence={const(p.confidence)}, "
                f"accuracy={const(p.accuracy)}, data_quality={const(p.data_quality)})")

    def interval(i: _IntervalShape) -> str:
        return (f"ReportInterval(payloads=[{', '.join(payload(p) for p in i.payloads)}], dtstart={ref(i.dtstart)}, "
                f"duration={const(i.duration)}, uid={const(i.uid)})")

    def report(r: _ReportShape) -> str:
        return (f"Report(report_request_id={ref(r.report_request_id)}, report_specifier_id={ref(r.report_specifier_id)}, "
                f"created_at={ref(r.created_at)}, report_name={const(r.report_name)}, report_id={ref(r.report_id)}, "
                f"dtstart={ref(r.dtstart)}, duration={const(r.duration)}, "
                f"intervals=[{', '.join(interval(i) for i in r.intervals)}])")

    source = (f"def make(S, D, F):\n    return UpdateReport(request_id={ref(shape.request_id)}, "
              f"reports=[{', '.join(report(r) for r in shape.reports)}], ven_id={ref(shape.ven_id)})\n")
    namespace = {"UpdateReport": m.UpdateReport, "Report": m.Report, "ReportInterval": m.ReportInterval,
                 "ReportPayload": m.ReportPayload, "C": tuple(constants)}
    exec(compile(source, "<report shape>", "exec"), namespace)
    return namespace["make"]


class ReportShapes:
    """Learned oadrUpdateReport shapes, by their markup; the oldest is forgotten first."""

    MAX_SHAPES = 64
    MAX_BYTES = 64 * 1024

    def __init__(self):
        self.shapes: dict[bytes, _Shape | None] = {}  # None: a shape seen and not learnable

    @staticmethod
    def _plain(body: bytes) -> bool:
        # Four memchr-speed scans: one regex alternation over the body costs several times more.
        return (len(body) <= ReportShapes.MAX_BYTES and body.find(_MESSAGE, 0, 1024) >= 0 and b"&" not in body
                and b"<!" not in body and b"]]>" not in body and b"\r" not in body)

    def match(self, body: bytes) -> m.UpdateReport | None:
        if not self._plain(body):
            return None
        parts = _GAP.split(body)  # markup, text, markup, text, ..., markup
        shape = self.shapes.get(b"><".join(parts[0::2]))
        if shape is None:
            return None
        gaps = parts[1::2]
        if shape.constants is not None and shape.constants(gaps) != shape.expected:
            return None
        try:
            values = shape.values(gaps)
            return None if values is None else shape.build(values)
        except ValueError:  # InvalidValue, UnicodeDecodeError, a date fromisoformat refuses
            return None  # the full path answers it, with its own words

    def learn(self, body: bytes, message: m.UpdateReport) -> None:
        """``body`` passed the full path, unsigned, and read to ``message``."""
        if not self._plain(body):
            return
        markup = _GAP.sub(b"><", body)
        if markup in self.shapes:
            return
        shape = _learn(body, message)
        if len(self.shapes) >= self.MAX_SHAPES:
            del self.shapes[next(iter(self.shapes))]  # a flood of odd shapes only costs the fast path
        self.shapes[markup] = shape


def _learn(body: bytes, message: m.UpdateReport) -> _Shape | None:
    tags = _TAG.findall(body)
    gaps = _GAP.findall(body)
    # Every '>' closes a tag (none inside an attribute value): tags and texts alternate.
    if len(tags) != len(gaps) + 1 or body.count(b">") != len(tags) or not body.lstrip().startswith(b"<"):
        return None
    if tags[0].startswith(b"?") and b"encoding" in tags[0] and not re.search(rb"""encoding=["']utf-8["']""",
                                                                                tags[0], re.I):
        return None
    if any(t.startswith(b"?") for t in tags[1:]):
        return None
    stack: list[bytes] = []
    roles: dict[int, str] = {}
    where: dict[int, tuple[int, int, int]] = {}
    report = interval = payload = -1
    for i, tag in enumerate(tags[:-1]):
        if tag.startswith(b"?"):
            continue
        if tag.startswith(b"/"):
            stack.pop()
            continue
        if tag.endswith(b"/"):
            continue
        local = tag.split(None, 1)[0].rsplit(b":", 1)[-1]
        stack.append(local)
        if local == b"oadrReport":
            report, interval, payload = report + 1, -1, -1
        elif local == b"interval":
            interval, payload = interval + 1, -1
        elif local == b"oadrReportPayload":
            payload += 1
        # This element's own text when its end tag follows; otherwise whitespace between children.
        if tags[i + 1].startswith(b"/"):
            role = _role(stack)
            if role is not None:
                roles[i] = role
                where[i] = (report, interval, payload)
    try:
        shape = _build_shape(message, roles, where, len(gaps))
    except (LookupError, TypeError):
        return None
    if shape is None:
        return None
    shape.expected = shape.constants(gaps) if shape.constants is not None else ()
    try:
        values = shape.values(gaps)
        again = shape.build(values) if values is not None else None
    except ValueError:  # InvalidValue, UnicodeDecodeError, a date fromisoformat refuses
        return None
    # The recipe must read the learned body exactly as the full path did, or it is not used.
    return shape if again == message else None


def _build_shape(message: m.UpdateReport, roles: dict[int, str], where: dict[int, tuple[int, int, int]],
                 count: int) -> _Shape | None:
    if any(r.descriptions for r in message.reports):
        return None
    if any(not isinstance(p.value, float) for r in message.reports for i in r.intervals for p in i.payloads):
        return None  # resource status payloads: not on this path

    def const(value) -> Field:
        return (CONST, 0, value)

    reports = [_ReportShape(const(r.report_request_id), const(r.report_specifier_id), const(r.created_at),
                            r.report_name, const(r.report_id), const(r.dtstart), r.duration,
                            [_IntervalShape(const(i.dtstart), i.duration, i.uid,
                                            [_PayloadShape(const(p.r_id), const(p.value), p.confidence, p.accuracy,
                                                           p.data_quality) for p in i.payloads])
                             for i in r.intervals])
               for r in message.reports]
    shape = _Shape(None, (), None, None, None, const(message.request_id), const(message.ven_id), reports)
    by_kind: dict[int, list[int]] = {STRING: [], DATETIME: [], FLOAT: []}
    for index in sorted(roles):
        role = roles[index]
        kind = STRING if role in _STRINGS else DATETIME if role in _DATETIMES else FLOAT
        field = (kind, len(by_kind[kind]), None)
        by_kind[kind].append(index)
        report, interval, payload = where[index]
        if role == "request_id":
            shape.request_id = field
        elif role == "ven_id":
            shape.ven_id = field
        elif role in ("report_id", "report_request_id", "report_specifier_id", "created_at"):
            setattr(reports[report], role, field)
        elif role == "report_dtstart":
            reports[report].dtstart = field
        elif role == "interval_dtstart":
            reports[report].intervals[interval].dtstart = field
        elif role == "r_id":
            reports[report].intervals[interval].payloads[payload].r_id = field
        elif role == "value":
            reports[report].intervals[interval].payloads[payload].value = field
    constant = [i for i in range(count) if i not in roles]
    shape.constants = itemgetter(*constant) if constant else None
    shape.strings = itemgetter(*by_kind[STRING]) if by_kind[STRING] else None
    shape.datetimes = itemgetter(*by_kind[DATETIME]) if by_kind[DATETIME] else None
    shape.floats = itemgetter(*by_kind[FLOAT]) if by_kind[FLOAT] else None
    shape.make = _compile(shape)
    return shape
