"""How `adrstack tail` shows one message: one line whatever the payload."""

from __future__ import annotations

from datetime import datetime, timezone

from adrstack.runtime.tail import format_line, render_payload

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def test_json_is_compacted_and_keeps_non_ascii():
    assert render_payload(b'{"a": 1,\n "b": ["\xc3\xa9"]}') == '{"a":1,"b":["\u00e9"]}'


def test_text_that_is_not_json_is_marked_and_escaped_onto_one_line():
    assert render_payload(b"hello\nworld") == 'text:"hello\\nworld"'
    assert render_payload(b"") == 'text:""'


def test_binary_is_base64():
    assert render_payload(b"\xff\x00") == "base64:/wA="


def test_line_is_subject_iso_time_payload():
    assert format_line("openadr.ven.v1.registered", WHEN, b"{}") == \
        "openadr.ven.v1.registered 2026-01-02T03:04:05.678+00:00 {}"
