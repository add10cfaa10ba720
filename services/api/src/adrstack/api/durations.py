"""ISO-8601 durations as the API speaks them ("PT1H", "P1DT30M").

Only day/week and time designators are accepted: years and months have no fixed length,
so a DR interval written with them would be ambiguous.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

_DURATION = re.compile(
    r"^P(?!$)"
    r"(?:(?P<weeks>\d+)W)?"
    r"(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)


class DurationError(ValueError):
    pass


def parse_duration(text: object, *, positive: bool = True) -> timedelta:
    """Parse an ISO-8601 duration; raise DurationError with a message a user can act on."""
    if not isinstance(text, str):
        raise DurationError(f"{text!r} is not an ISO-8601 duration string such as PT1H")
    value = text.strip().upper()
    if value.startswith("-"):
        raise DurationError(f"{text!r} is negative; a duration must be positive, e.g. PT1H")
    m = _DURATION.fullmatch(value)
    if not m:
        raise DurationError(
            f"{text!r} is not an ISO-8601 duration (use e.g. PT1H, PT15M, P1DT2H; no years or months)"
        )
    parts = m.groupdict()
    try:
        seconds = Decimal((parts["seconds"] or "0").replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the regex already guarantees digits
        raise DurationError(f"{text!r} has invalid seconds") from None
    try:
        result = timedelta(
            weeks=int(parts["weeks"] or 0),
            days=int(parts["days"] or 0),
            hours=int(parts["hours"] or 0),
            minutes=int(parts["minutes"] or 0),
            seconds=float(seconds),
        )
    except OverflowError:
        raise DurationError(f"{text[:40]!r} is too long; a duration must be under 999999999 days") from None
    if positive and result <= timedelta(0):
        raise DurationError(f"{text!r} is zero; a duration must be positive, e.g. PT1H")
    return result


def format_duration(value: timedelta) -> str:
    """Format like pydantic does on the wire: days as ``P<n>D``, then ``T<h>H<m>M<s>S``."""
    if value < timedelta(0):
        return "-" + format_duration(-value)
    days = value.days
    seconds = value.seconds
    micros = value.microseconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P"
    if days:
        out += f"{days}D"
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if secs or micros:
        if micros:
            frac = f"{micros:06d}".rstrip("0")
            time += f"{secs}.{frac}S"
        else:
            time += f"{secs}S"
    if time:
        out += "T" + time
    if out == "P":
        out = "PT0S"
    return out


def normalize_duration(stored: object) -> str:
    """A duration read back from storage (ISO string or seconds) in the API's canonical form."""
    if isinstance(stored, (int, float)) and not isinstance(stored, bool):
        return format_duration(timedelta(seconds=stored))
    if isinstance(stored, timedelta):
        return format_duration(stored)
    try:
        return format_duration(parse_duration(stored, positive=False))
    except DurationError:
        return str(stored)
