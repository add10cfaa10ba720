"""NATS subject names. Ids become subject tokens, so every id is validated here first."""

from __future__ import annotations

import re
from dataclasses import dataclass

# NATS tokens must not contain '.', '*', '>' or whitespace; we are stricter so that the
# same ids are also valid KV keys, file names and URL path segments.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
TOKEN_RULE = "1-128 characters from A-Z, a-z, 0-9, '_' and '-'"

TRANSITIONS = ("created", "modified", "far", "near", "active", "completed", "cancelled")
# The last token of the command subjects (core NATS request/reply).
EVENT_COMMANDS = ("create", "modify", "cancel")
VEN_ACTIONS = ("cancel", "reregister")
REPORT_COMMANDS = ("request", "cancel")


class InvalidIdError(ValueError):
    """An id that cannot be used as a NATS subject token."""

    def __init__(self, what: str, value: object):
        self.what = what
        self.value = value
        super().__init__(f"invalid {what} {value!r}: must be {TOKEN_RULE}")


def is_valid_token(value: object) -> bool:
    return isinstance(value, str) and TOKEN_PATTERN.fullmatch(value) is not None


def validate_token(value: object, what: str = "id") -> str:
    if not is_valid_token(value):
        raise InvalidIdError(what, value)
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class Subjects:
    """Subject names under one prefix (default ``openadr``; tests use their own)."""

    prefix: str = "openadr"

    def __post_init__(self) -> None:
        parts = self.prefix.split(".")
        if not all(is_valid_token(p) for p in parts):
            raise ValueError(f"invalid subject prefix {self.prefix!r}")

    # -- facts about VENs (published by the gateway) --
    def _ven(self, ven_id: str, suffix: str) -> str:
        return f"{self.prefix}.ven.{validate_token(ven_id, 'ven_id')}.{suffix}"

    def ven_registered(self, ven_id: str) -> str:
        return self._ven(ven_id, "registered")

    def ven_deregistered(self, ven_id: str) -> str:
        return self._ven(ven_id, "deregistered")

    def report_registered(self, ven_id: str) -> str:
        return self._ven(ven_id, "report.registered")

    def report_data(self, ven_id: str) -> str:
        return self._ven(ven_id, "report.data")

    def opt(self, ven_id: str) -> str:
        return self._ven(ven_id, "opt")

    def opt_schedule(self, ven_id: str) -> str:
        return self._ven(ven_id, "opt.schedule")

    def report_request(self, ven_id: str) -> str:
        return self._ven(ven_id, "report.request")

    def seen(self, ven_id: str) -> str:
        return self._ven(ven_id, "seen")

    def push_failed(self, ven_id: str) -> str:
        return self._ven(ven_id, "push.failed")

    def report_status(self, ven_id: str) -> str:
        """TELEMETRY_STATUS payloads (oadrPayloadResourceStatus) of an oadrUpdateReport."""
        return self._ven(ven_id, "report.status")

    # -- facts about events (published by the scheduler) --
    def event(self, event_id: str, transition: str) -> str:
        if transition not in TRANSITIONS:
            raise ValueError(f"unknown event transition {transition!r}")
        return f"{self.prefix}.event.{validate_token(event_id, 'event_id')}.{transition}"

    # -- commands (core NATS request/reply, not stored) --
    def cmd_event(self, verb: str) -> str:
        if verb not in EVENT_COMMANDS:
            raise ValueError(f"unknown event command {verb!r}")
        return f"{self.prefix}.cmd.event.{verb}"

    def cmd_ven(self, action: str) -> str:
        if action not in VEN_ACTIONS:
            raise ValueError(f"unknown VEN command {action!r}")
        return f"{self.prefix}.cmd.ven.{action}"

    def cmd_report(self, verb: str) -> str:
        if verb not in REPORT_COMMANDS:
            raise ValueError(f"unknown report command {verb!r}")
        return f"{self.prefix}.cmd.report.{verb}"

    # -- dead letters (their own stream: never captured by the facts stream) --
    def dead_letter(self, consumer: str) -> str:
        return f"{self.prefix}.deadletter.{validate_token(consumer, 'consumer')}"

    @property
    def all_dead_letters(self) -> str:
        return f"{self.prefix}.deadletter.>"

    # -- wildcards --
    @property
    def all_ven_facts(self) -> str:
        return f"{self.prefix}.ven.>"

    @property
    def all_event_facts(self) -> str:
        return f"{self.prefix}.event.>"

    @property
    def stream_subjects(self) -> list[str]:
        return [self.all_ven_facts, self.all_event_facts]

    @property
    def everything(self) -> str:
        return f"{self.prefix}.>"

    def parse(self, subject: str) -> tuple[str, str, str]:
        """Split a fact subject into (kind, id, what): ('ven', ven_id, 'report.data')."""
        head = self.prefix + "."
        if not subject.startswith(head):
            raise ValueError(f"subject {subject!r} is not under {self.prefix!r}")
        kind, ident, what = subject[len(head):].split(".", 2)
        return kind, ident, what
