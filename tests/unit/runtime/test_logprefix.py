"""Children's output becomes whole, prefixed lines, however the bytes arrive."""

from __future__ import annotations

from adrstack.runtime.logprefix import LinePrefixer, prefixed


def test_each_line_gets_the_padded_name():
    assert prefixed("api", 9, [b"one\ntwo\n"]) == ["api       | one\n", "api       | two\n"]


def test_lines_split_across_chunks_are_joined():
    p = LinePrefixer("gateway", 9)
    assert p.feed(b"hel") == []
    assert p.feed(b"lo\nwor") == ["gateway   | hello\n"]
    assert p.feed(b"ld\n") == ["gateway   | world\n"]


def test_last_line_without_newline_is_flushed_at_the_end():
    assert prefixed("x", 1, [b"Traceback\nValueError: boom"]) == ["x | Traceback\n", "x | ValueError: boom\n"]
    assert prefixed("x", 1, [b"done\n"]) == ["x | done\n"]  # no empty extra line


def test_utf8_split_inside_a_character_survives():
    data = "température 42 °C\n".encode()
    cut = data.index("é".encode()) + 1
    assert prefixed("t", 1, [data[:cut], data[cut:]]) == ["t | température 42 °C\n"]


def test_carriage_returns_and_bad_bytes_never_break_the_one_line_rule():
    lines = prefixed("w", 1, [b"crlf\r\n", b"progress 1\rprogress 2\n", b"\xff\xfebad\n"])
    assert lines == ["w | crlf\n", "w | progress 1progress 2\n", "w | \ufffd\ufffdbad\n"]


def test_empty_lines_are_kept():
    assert prefixed("a", 1, [b"\n\n"]) == ["a | \n", "a | \n"]
