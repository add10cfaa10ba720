"""Idle polls of a shape already validated are read without a parser, and nothing else is."""

from __future__ import annotations

import pytest
from openleadr.messaging import create_message

from adrstack.gateway.codec import MalformedXml, parse
from adrstack.gateway.codec import reader as parse_module
from adrstack.gateway.codec.reader import PollShapes


@pytest.fixture
def shapes(monkeypatch) -> PollShapes:
    fresh = PollShapes()
    monkeypatch.setattr(parse_module, "_POLL_SHAPES", fresh)
    return fresh


def poll(ven_id: str) -> bytes:
    return create_message("oadrPoll", ven_id=ven_id).encode()


@pytest.fixture
def no_parser(monkeypatch):
    """Makes any use of lxml's parser fail the test."""
    def refuse():
        raise AssertionError("the parser was used")

    return lambda: monkeypatch.setattr(parse_module, "_xml_parser", refuse)


def test_a_validated_shape_reads_other_vens_polls_without_the_parser(shapes, no_parser):
    assert parse(poll("ven-aaaaaaaaaaaa")).message.ven_id == "ven-aaaaaaaaaaaa"
    assert len(shapes.shapes) == 1
    no_parser()
    envelope = parse(poll("ven-bbbbbbbbbbbb"))
    assert envelope.message_type == "oadrPoll" and envelope.message.ven_id == "ven-bbbbbbbbbbbb"


def test_a_slot_that_is_not_a_token_takes_the_full_path(shapes):
    parse(poll("ven-aaaaaaaaaaaa"))
    prefix, suffix = next(iter(shapes.shapes))
    assert shapes.match(prefix + b"ven.1" + suffix) is None
    assert parse(prefix + b"ven.1" + suffix).message.ven_id == "ven.1"  # the handler refuses it (452)
    # Markup in the slot can never be taken for a venID.
    smuggled = prefix + b"x</ei:venID><ei:venID>y" + suffix
    assert shapes.match(smuggled) is None
    with pytest.raises(MalformedXml):
        parse(smuggled)


def test_other_shapes_and_other_messages_are_not_matched(shapes):
    parse(poll("ven-aaaaaaaaaaaa"))
    spaced = poll("ven-bbbbbbbbbbbb").replace(b"<ei:venID>", b"<ei:venID >")
    assert shapes.match(spaced) is None
    assert parse(spaced).message.ven_id == "ven-bbbbbbbbbbbb"  # valid, via the full path, now learned too
    assert shapes.match(create_message("oadrQueryRegistration", request_id="ven-aaaaaaaaaaaa").encode()) is None


def test_only_unsigned_polls_of_a_single_venid_occurrence_are_learned(shapes):
    shapes.learn(b"<a>v1</a><b>v1</b>", "v1")  # the venID text twice: ambiguous
    shapes.learn(b"<a>x" * 2000 + b"<v>v1</v>", "v1")  # too big to be a poll
    assert not shapes.shapes


def test_the_number_of_shapes_is_bounded(shapes):
    for i in range(PollShapes.MAX_SHAPES + 5):
        shapes.learn(f"<p{i}><v>ven-1</v></p{i}>".encode(), "ven-1")
    assert len(shapes.shapes) == PollShapes.MAX_SHAPES
    assert shapes.match(b"<p20><v>abc</v></p20>") == "abc"  # the newest are kept
    assert shapes.match(b"<p0><v>abc</v></p0>") is None
