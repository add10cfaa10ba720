"""Strict readers and writers for the 2.0b value types (date-times, durations, numbers, booleans).

The XSD lets through values that are valid lexically but useless or dangerous to us: a
``P`` duration with no element, ``P99999999Y`` (beyond what a timedelta holds), a
400-digit float (infinite in Python), a date-time without a zone or in year 9999 (any
duration added to it overflows). Each reader raises :class:`InvalidValue` for those, which
the handlers answer with OpenADR 454 (invalid data) instead of an HTTP 500.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

# Every date-time we accept lies in this range, so that adding any accepted duration to it
# stays representable (datetime.max is 9999-12-31).
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
# 1 year = 365 days and 1 month = 30 days, as openleadr reads them (RFC 5545 durations with
# years or months are not fixed lengths; 2.0b VENs use them rarely, for long report periods).
MAX_DURATION = timedelta(days=100 * 365)

# RFC 5545 durations as 2.0b writes them: P[nY][nM][nW][nD][T[nH][nM][nS]], at least one
# element, T only before a time element. At most 12 digits each: int() of a longer string is
# slow (and above 4300 digits an error), and no real duration needs more.
_DURATION = re.compile(
    r"([+-])?P(?:(\d{1,12})Y)?(?:(\d{1,12})M)?(?:(\d{1,12})W)?(?:(\d{1,12})D)?"
    r"(?:T(?=\d)(?:(\d{1,12})H)?(?:(\d{1,12})M)?(?:(\d{1,12})S)?)?"
)
# The XSD's other branch: a bare week count without the P.
_WEEKS = re.compile(r"(\d{1,12})W")


class InvalidValue(ValueError):
    """A value that the 2.0b schema admits but we cannot use; the message is safe to send back."""


def _shown(text: str) -> str:
    return repr(text[:40] + ("..." if len(text) > 40 else ""))


def parse_duration(text: str, what: str = "duration", *, allow_zero: bool = True) -> timedelta:
    text = text.strip()
    m = _DURATION.fullmatch(text)
    if m is None or text in ("P", "+P", "-P"):
        w = _WEEKS.fullmatch(text)
        if w is None:
            raise InvalidValue(f"{what} {_shown(text)} is not an RFC 5545 duration such as PT15M")
        parts = (None, None, None, w.group(1), None, None, None, None)
    else:
        parts = m.groups()
    sign, years, months, weeks, days, hours, minutes, seconds = parts
    if sign == "-":
        raise InvalidValue(f"{what} {_shown(text)} is negative")
    total_days = 365 * int(years or 0) + 30 * int(months or 0) + 7 * int(weeks or 0) + int(days or 0)
    total_seconds = 3600 * int(hours or 0) + 60 * int(minutes or 0) + int(seconds or 0)
    if total_days + total_seconds / 86400 > MAX_DURATION.days:
        raise InvalidValue(f"{what} {_shown(text)} is longer than {MAX_DURATION.days // 365} years")
    value = timedelta(days=total_days, seconds=total_seconds)
    if not allow_zero and not value:
        raise InvalidValue(f"{what} must not be zero")
    return value


def format_duration(value: timedelta) -> str:
    """PT0S for zero (openleadr writes a bare 'P', which RFC 5545 does not allow)."""
    seconds = int(value.total_seconds())
    if seconds < 0 or value.microseconds:
        raise ValueError(f"cannot write {value!r} as a 2.0b duration (whole, non-negative seconds only)")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P"
    if days:
        out += f"{days}D"
    if hours or minutes or secs or not days:
        out += "T"
        if hours:
            out += f"{hours}H"
        if minutes:
            out += f"{minutes}M"
        if secs or not (hours or minutes):
            out += f"{secs}S"
    return out


def parse_datetime(text: str, what: str = "date-time") -> datetime:
    text = text.strip()
    if not text.endswith("Z"):
        # The 2.0b schema allows a "floating" time without a zone; which zone it meant is unknown.
        raise InvalidValue(f"{what} {_shown(text)} is not a UTC date-time (e.g. 2030-01-01T12:00:00Z)")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        # The schema allows forms Python does not read (24:00:00, a sign, year 0000 or > 9999).
        raise InvalidValue(f"{what} {_shown(text)} is not a date-time we can use") from None
    if not EARLIEST <= value < LATEST:
        raise InvalidValue(f"{what} {_shown(text)} is outside {EARLIEST.year}..{LATEST.year - 1}")
    return value


def format_datetime(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_float(text: str, what: str = "value") -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidValue(f"{what} {_shown(text.strip())} is not a number") from None
    # xs:float admits INF, NaN and 400-digit numbers (which Python reads as inf); none can be
    # stored or compared meaningfully, and JSON cannot carry them.
    if not math.isfinite(value):
        raise InvalidValue(f"{what} {_shown(text.strip())} is not a finite number")
    return value


def format_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} as xs:float")
    return repr(float(value))


def parse_int(text: str, what: str = "number") -> int:
    text = text.strip()
    # xs:unsignedInt also allows a leading '+' and leading zeros. The schema bounds the value
    # already; this is the backstop (ASCII digits only: str.isdigit() admits '²', which int() refuses).
    digits = text[1:] if text.startswith("+") else text
    significant = digits.lstrip("0")
    if not (digits.isascii() and digits.isdigit()) or len(significant) > 10:
        raise InvalidValue(f"{what} {_shown(text)} is not an unsigned integer")
    return int(significant or "0")  # int() refuses > 4300 digits, even leading zeros


def parse_bool(text: str) -> bool:
    return text.strip() in ("true", "1")


def format_bool(value: bool) -> str:
    return "true" if value else "false"
