"""The one mirror of the events bucket (``openadr-events``), for every service that reads events."""

from __future__ import annotations

import logging

from nats.js.kv import KeyValue
from pydantic import ValidationError

from . import kv_keys
from .kv_mirror import ChangeHook, KvMirror
from .messages import DrEvent

log = logging.getLogger(__name__)

EVENT_PREFIX = kv_keys.EVENT_RECORDS.removesuffix(">")


def event_bytes(event: DrEvent) -> bytes:
    return event.model_dump_json().encode("utf-8")


def decode_event(raw: bytes) -> DrEvent:
    """Raises pydantic.ValidationError for a record that is not a DrEvent."""
    return DrEvent.model_validate_json(raw)


def _decode_or_none(raw: bytes) -> DrEvent | None:
    try:
        return decode_event(raw)
    except ValidationError as e:
        log.error("unreadable event record: %s", e)
        return None


class EventsMirror(KvMirror[DrEvent]):
    """event_id -> the current DrEvent, as the scheduler stored it."""

    def __init__(self, kv: KeyValue, on_change: ChangeHook | None = None):
        super().__init__(kv, EVENT_PREFIX, _decode_or_none, on_change=on_change, name=f"{kv._name} events")
