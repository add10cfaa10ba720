"""Every list field's ``limit``: its default and its cap. A ``limit`` above the cap (or below 1)
is refused as INVALID, naming the field, rather than quietly cut: a caller who asked for more
learns at once that they will not get it."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInput


@dataclass(frozen=True)
class Page:
    default: int
    maximum: int

    def limit(self, value: int | None, field: str = "limit") -> int:
        if value is None:
            return self.default
        if value < 1:
            raise InvalidInput(field, f"{value} must be at least 1")
        if value > self.maximum:
            raise InvalidInput(field, f"{value} is more than the {self.maximum} allowed; ask for fewer")
        return value

    def describe(self) -> str:
        return f"at most `limit` (default {self.default}, at most {self.maximum})"


VENS = Page(default=1000, maximum=10_000)
EVENTS = Page(default=1000, maximum=1000)
READINGS = Page(default=1000, maximum=10_000)
PROVISIONED_VENS = Page(default=1000, maximum=10_000)
API_TOKENS = Page(default=1000, maximum=1000)
OPT_SCHEDULES = Page(default=1000, maximum=10_000)
GROUPS = Page(default=1000, maximum=10_000)
PUSH_FAILURES = Page(default=100, maximum=1000)
PROGRAMS = Page(default=1000, maximum=10_000)
VEN_STATUS = Page(default=1000, maximum=10_000)
DEAD_LETTERS = Page(default=100, maximum=1000)
REPORT_REQUESTS = Page(default=100, maximum=1000)
