"""ADRSTACK_LOG_FORMAT=json: one JSON object per line with the ven_id and event_id it is about."""

from __future__ import annotations

import io
import json
import logging

import pytest

from adrstack.shared.logfields import JsonFormatter, log_fields
from adrstack.shared.runner import configure_logging


@pytest.fixture
def captured():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("adrstack.test.jsonlogs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    log.removeHandler(handler)


def test_bound_fields_and_extra_are_in_each_line(captured):
    log, lines = captured
    with log_fields(ven_id="ven-1"):
        log.info("polled %s", "ven-1")
        with log_fields(event_id="ev-9"):
            log.warning("delivered", extra={"event_id": "ev-10"})
    log.info("after")
    first, second, third = lines()
    assert first["message"] == "polled ven-1" and first["level"] == "INFO"
    assert first["logger"] == "adrstack.test.jsonlogs" and first["ven_id"] == "ven-1" and "event_id" not in first
    assert (second["ven_id"], second["event_id"]) == ("ven-1", "ev-10")  # the call's own extra wins
    assert "ven_id" not in third and "event_id" not in third
    assert first["time"].endswith("+00:00")


def test_exceptions_stay_on_one_line(captured):
    log, lines = captured
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        log.exception("failed")
    [line] = lines()
    assert "RuntimeError: boom" in line["exception"]


def test_configure_logging_reads_the_format_and_refuses_unknown_ones(monkeypatch):
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        monkeypatch.setenv("ADRSTACK_LOG_FORMAT", "json")
        root.handlers = []
        configure_logging("INFO")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        monkeypatch.setenv("ADRSTACK_LOG_FORMAT", "xml")
        with pytest.raises(ValueError, match="ADRSTACK_LOG_FORMAT"):
            configure_logging("INFO")
    finally:
        root.handlers = saved
