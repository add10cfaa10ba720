"""The VEN and the event a log line is about, for JSON logs (``ADRSTACK_LOG_FORMAT=json``).

A handler binds them for what it is doing (``with log_fields(ven_id=...)``); a single call can
also pass ``extra={"event_id": ...}``. Text logs ignore them: the message already names the ids.
"""

from __future__ import annotations

import contextlib
import json
import logging
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Iterator

FIELDS = ("ven_id", "event_id")
_bound: ContextVar[dict[str, str]] = ContextVar("adrstack_log_fields", default={})


@contextlib.contextmanager
def log_fields(**fields: str | None) -> Iterator[None]:
    given = {k: v for k, v in fields.items() if k in FIELDS and isinstance(v, str) and v}
    token = _bound.set({**_bound.get(), **given})
    try:
        yield
    finally:
        _bound.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ven_id/event_id when known, and
    the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_bound.get())
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
