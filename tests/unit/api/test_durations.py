from datetime import timedelta

import pytest

from adrstack.api.durations import DurationError, format_duration, normalize_duration, parse_duration


@pytest.mark.parametrize(
    "text, expected",
    [
        ("PT1H", timedelta(hours=1)),
        ("PT15M", timedelta(minutes=15)),
        ("PT30S", timedelta(seconds=30)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("P1D", timedelta(days=1)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("P2W", timedelta(weeks=2)),
        ("pt1h", timedelta(hours=1)),
    ],
)
def test_parse_accepts_iso8601(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text, says",
    [
        ("1 hour", "not an ISO-8601 duration"),
        ("PT", "not an ISO-8601 duration"),
        ("P", "not an ISO-8601 duration"),
        ("P1Y", "not an ISO-8601 duration"),
        ("P1M", "not an ISO-8601 duration"),
        ("PT1H2", "not an ISO-8601 duration"),
        ("", "not an ISO-8601 duration"),
        ("PT0S", "zero"),
        ("P0D", "zero"),
        ("-PT1H", "negative"),
        (3600, "not an ISO-8601 duration string"),
    ],
)
def test_parse_rejects_with_a_reason(text, says):
    with pytest.raises(DurationError, match=says):
        parse_duration(text)


@pytest.mark.parametrize(
    "value, text",
    [
        (timedelta(hours=1), "PT1H"),
        (timedelta(minutes=90), "PT1H30M"),
        (timedelta(days=1, seconds=1), "P1DT1S"),
        (timedelta(seconds=0.5), "PT0.5S"),
        (timedelta(weeks=2), "P14D"),
        (timedelta(0), "PT0S"),
        (timedelta(hours=-1), "-PT1H"),
    ],
)
def test_format(value, text):
    assert format_duration(value) == text


def test_format_matches_the_wire_format_pydantic_writes():
    from adrstack.shared.messages import EventInterval

    for td in (timedelta(hours=1), timedelta(minutes=90), timedelta(days=3, minutes=1), timedelta(seconds=1.25)):
        wire = EventInterval(duration=td, payload=1).model_dump(mode="json")["duration"]
        assert format_duration(td) == wire
        assert parse_duration(wire) == td


@pytest.mark.parametrize("stored", ["PT1H", "PT60M", 3600, 3600.0, timedelta(hours=1)])
def test_normalize_reads_what_storage_may_hold(stored):
    assert normalize_duration(stored) == "PT1H"
