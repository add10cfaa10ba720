"""oadrUpdateReports of a shape already validated are read without a parser, to exactly the message
the full path reads, and every body the shortcut cannot vouch for takes the full path."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openleadr.messaging import create_message

from adrstack.gateway.codec import HostileXml, InvalidContent, MalformedXml, parse
from adrstack.gateway.codec import reader as parse_module
from adrstack.gateway.codec.report_shapes import ReportShapes

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def shapes(monkeypatch) -> ReportShapes:
    fresh = ReportShapes()
    monkeypatch.setattr(parse_module, "_REPORT_SHAPES", fresh)
    return fresh


@pytest.fixture
def no_parser(monkeypatch):
    """Makes any use of lxml's parser fail the test."""
    def refuse():
        raise AssertionError("the parser was used")

    return lambda: monkeypatch.setattr(parse_module, "_xml_parser", refuse)


def report(ven_id="ven-aaaaaaaaaaaa", values=(1.5, 2.5, 3.5), start=T0, request_id="req-1", rr_id="rr-1",
           spec="usage-1", r_id="power-1", name="TELEMETRY_USAGE", report_id="rep-1") -> bytes:
    return create_message("oadrUpdateReport", ven_id=ven_id, request_id=request_id, reports=[{
        "report_id": report_id, "report_request_id": rr_id, "report_specifier_id": spec, "report_name": name,
        "created_date_time": start,
        "intervals": [{"dtstart": start + timedelta(seconds=i), "report_payload": {"r_id": r_id, "value": v}}
                      for i, v in enumerate(values)]}]).encode()


def full(body: bytes):
    """What the full path (lxml, XSD, typed reader) makes of ``body``: the message or the error."""
    try:
        return parse(body, keep_tree=True).message
    except (HostileXml, MalformedXml, InvalidContent) as e:
        return type(e)


def read(body: bytes):
    try:
        return parse(body).message
    except (HostileXml, MalformedXml, InvalidContent) as e:
        return type(e)


def test_a_learned_shape_reads_other_reports_without_the_parser(shapes, no_parser):
    first = report()
    assert read(first) == full(first)
    assert len(shapes.shapes) == 1 and next(iter(shapes.shapes.values())) is not None
    other = report(ven_id="ven-bbbbbbbbbbbb", values=(-0.25, 1e-7, 123456.0), start=T0 + timedelta(days=3),
                   request_id="req-2", rr_id="rr-9", spec="meter-7", r_id="energy-2", report_id="rep-77")
    expected = full(other)
    no_parser()
    message = parse(other).message
    assert message == expected
    assert message.ven_id == "ven-bbbbbbbbbbbb" and message.reports[0].intervals[2].payloads[0].value == 123456.0


@pytest.mark.parametrize("old, new", [
    (b">2.5<", b">abc<"), (b">2.5<", b">1_0<"), (b">2.5<", b"> 2.5<"), (b">2.5<", b">NaN<"),
    (b">2.5<", b">INF<"), (b">2.5<", b">1e999<"), (b">2.5<", b">3.5e38<"), (b">2.5<", b">0x10<"),
    (b"2030-01-01T12:00:01", b"2030-13-01T12:00:01"), (b"2030-01-01T12:00:01", b"2030-01-01 12:00:01"),
    (b"2030-01-01T12:00:01", b"9500-01-01T12:00:01"), (b"2030-01-01T12:00:01", b"2030-02-30T12:00:01"),
    (b"ven-aaaaaaaaaaaa", b"ven-\x01aaaaaaaaa"), (b"ven-aaaaaaaaaaaa", b"ven-a&amp;aaaaaaaa"),
    (b"ven-aaaaaaaaaaaa", b"ven-a\r\naaaaaaaa"), (b"ven-aaaaaaaaaaaa", b"ven-\xff\xfeaaaaaaaa"),
    (b"ven-aaaaaaaaaaaa", b"ven-\xef\xbf\xbeaaaaaaa"), (b"TELEMETRY_USAGE", b"TELEMETRY_STATUS"),
    (b"TELEMETRY_USAGE", b"NOT_A_REPORT_NAME"), (b"rep-1", b"rep<!-- x -->1"), (b"rep-1", b"rep-1]]>"),
])
def test_a_text_the_shortcut_cannot_vouch_for_takes_the_full_path(shapes, old, new):
    parse(report())
    body = report().replace(old, new, 1)
    assert body != report()
    assert shapes.match(body) is None
    assert read(body) == full(body)


def test_markup_that_differs_is_another_shape(shapes):
    parse(report())
    learned = len(shapes.shapes)
    for body in (report(values=(1.0, 2.0)), report().replace(b"<ei:rID>", b"<ei:rID >", 1)):
        assert shapes.match(body) is None
        assert read(body) == full(body)
    assert len(shapes.shapes) == learned + 2


def test_only_unsigned_update_reports_are_learned(shapes):
    parse(create_message("oadrPoll", ven_id="ven-aaaaaaaaaaaa").encode())
    assert shapes.shapes == {}
    signed = report().replace(b"<oadr:oadrSignedObject", b"<ds:Signature/><oadr:oadrSignedObject", 1)
    assert read(signed) == full(signed)
    assert shapes.shapes == {}


def test_the_number_of_shapes_is_bounded(shapes):
    for n in range(ReportShapes.MAX_SHAPES + 5):
        parse(report(values=(1.0,) * (n + 1)))
    assert len(shapes.shapes) == ReportShapes.MAX_SHAPES


_PLAIN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._:-"
_texts = st.one_of(st.text(_PLAIN_ALPHABET, min_size=1, max_size=12),
                   st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12))
_floats = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-10**6, 10**6))


@settings(max_examples=150, deadline=None)
@given(values=st.lists(_floats, min_size=3, max_size=3), ven_id=_texts, request_id=_texts, rr_id=_texts,
       r_id=_texts, seconds=st.integers(-10**9, 10**10), micros=st.integers(0, 999_999))
def test_every_body_reads_as_the_full_path_reads_it(values, ven_id, request_id, rr_id, r_id, seconds, micros):
    shapes = ReportShapes()
    learned = report()
    parsed = parse(learned, keep_tree=True).message
    shapes.learn(learned, parsed)
    start = T0 + timedelta(seconds=seconds, microseconds=micros)
    try:
        body = report(ven_id=ven_id, values=values, start=start, request_id=request_id, rr_id=rr_id, r_id=r_id)
    except Exception:  # noqa: BLE001 - what openleadr cannot render is no input for this property
        return
    fast = shapes.match(body)
    expected = full(body)
    if fast is not None:
        assert fast == expected
    elif all(set(t) <= _PLAIN for t in (ven_id, request_id, rr_id, r_id)) and not isinstance(expected, type):
        raise AssertionError("a plain report of the learned shape took the full path")


_PLAIN = set(_PLAIN_ALPHABET)
