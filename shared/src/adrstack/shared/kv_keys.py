"""Key layout of the KV buckets (keys must be NATS-KV-safe: ids are validated tokens)."""

from __future__ import annotations

import hashlib

from .subjects import validate_token


# Per-VEN records in ``openadr-vens`` are "<prefix><ven_id>"; the gateway mirrors each prefix.
VEN_PREFIX = "ven."
DELIVERY_PREFIX = "delivery."
REPORTS_PREFIX = "reports."
OPTS_PREFIX = "opts."


def ven_key(ven_id: str) -> str:
    """``openadr-vens``: the VenRecord of a registered VEN."""
    return VEN_PREFIX + validate_token(ven_id, "ven_id")


def ven_name_key(ven_name: str) -> str:
    """``openadr-vens``: ven_name -> ven_id index (a name may hold any character, so hash it)."""
    return "name." + hashlib.sha256(ven_name.encode("utf-8")).hexdigest()[:40]


def delivery_key(ven_id: str) -> str:
    """``openadr-vens``: what the gateway last delivered to this VEN (shared by replicas)."""
    return DELIVERY_PREFIX + validate_token(ven_id, "ven_id")


def reports_key(ven_id: str) -> str:
    """``openadr-vens``: the VEN's registered report metadata and our pending report requests."""
    return REPORTS_PREFIX + validate_token(ven_id, "ven_id")


def opts_key(ven_id: str) -> str:
    """``openadr-vens``: the VEN's opt schedules (EiOpt), by optID."""
    return OPTS_PREFIX + validate_token(ven_id, "ven_id")


VEN_RECORDS = "ven.>"


def event_key(event_id: str) -> str:
    """``openadr-events``: the current DrEvent."""
    return f"event.{validate_token(event_id, 'event_id')}"


EVENT_RECORDS = "event.>"


GROUP_PREFIX = "group."


def group_key(group_id: str) -> str:
    """``openadr-groups``: the GroupRecord of a VEN group."""
    return GROUP_PREFIX + validate_token(group_id, "group_id")


GROUP_RECORDS = "group.>"


PROGRAM_PREFIX = "program."


def program_key(program_id: str) -> str:
    """``openadr-programs``: the ProgramRecord of a program."""
    return PROGRAM_PREFIX + validate_token(program_id, "program_id")


PROGRAM_RECORDS = "program.>"
