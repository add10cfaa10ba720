"""The strict 2.0b value readers and writers: what they accept, what they refuse, round trips."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adrstack.gateway.codec.values import (EARLIEST, MAX_DURATION, InvalidValue, format_bool, format_datetime,
                                           format_duration, format_float, parse_bool, parse_datetime, parse_duration,
                                           parse_float, parse_int)

SETTINGS = settings(max_examples=200, deadline=None, database=None)

# The vendored XSD's patterns (xcal:DurationValueType, xcal:DateTimeType): what we write must match.
XSD_DURATION = re.compile(r"(\+|\-)?P((\d+Y)?(\d+M)?(\d+D)?T?(\d+H)?(\d+M)?(\d+S)?)|(\d+W)")
XSD_DATETIME = re.compile(r"(\-|\+)?\d{4}\-\d{2}\-\d{2}T\d{2}:\d{2}:\d{2}(\.\d*)?Z?")

# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize("text,expected", [
    ("PT15M", timedelta(minutes=15)),
    ("PT0S", timedelta(0)),
    ("P1D", timedelta(days=1)),
    ("P1DT12H", timedelta(days=1, hours=12)),
    ("PT1H30M5S", timedelta(hours=1, minutes=30, seconds=5)),
    ("1W", timedelta(weeks=1)),  # the XSD's other branch: weeks without the P
    ("P2W", timedelta(weeks=2)),
    ("0W", timedelta(0)),
    ("+PT1H", timedelta(hours=1)),
    # Years and months as openleadr reads them: 365 and 30 days.
    ("P1Y2M3DT4H5M6S", timedelta(days=365 + 60 + 3, hours=4, minutes=5, seconds=6)),
    (" PT1M\n", timedelta(minutes=1)),  # surrounding whitespace, as a parser may leave it
    ("PT000000000060S", timedelta(minutes=1)),  # 12 digits is still fine
    ("P36500D", MAX_DURATION),  # the longest accepted
    ("P100Y", MAX_DURATION),
])
def test_durations_read(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", [
    "P",  # no element: schema-valid, meaningless
    "PT",
    "+P",
    "-P",
    "P1DT",  # T with no time element
    "-PT1H",  # negative
    "P99999999Y",  # beyond what a timedelta holds
    "P36501D",  # longer than MAX_DURATION
    "PT3153600001S",
    "PT1234567890123S",  # 13 digits: int() of long strings is slow; refused before it
    "P0000000000001D",
    "P1H",  # RFC 5545 wants the T before time elements (the XSD's T? lets it through)
    "P1.5D",
    "PT1H1H",
    "W",
    "1",
    "",
])
def test_durations_refused(text):
    with pytest.raises(InvalidValue):
        parse_duration(text)


def test_zero_duration_can_be_refused():
    assert parse_duration("PT0S") == timedelta(0)
    for zero in ("PT0S", "P0D", "0W"):
        with pytest.raises(InvalidValue, match="granularity must not be zero"):
            parse_duration(zero, "granularity", allow_zero=False)


def test_refusals_name_the_value_briefly():
    with pytest.raises(InvalidValue) as e:
        parse_duration("P" + "9" * 500 + "D", "reportBackDuration")
    assert "reportBackDuration" in str(e.value)
    assert len(str(e.value)) < 150  # the value is cut short: the message goes back to the VEN


@pytest.mark.parametrize("value,text", [
    (timedelta(0), "PT0S"),  # openleadr writes a bare "P", which RFC 5545 does not allow
    (timedelta(seconds=1), "PT1S"),
    (timedelta(seconds=90), "PT1M30S"),
    (timedelta(hours=2), "PT2H"),
    (timedelta(days=1), "P1D"),
    (timedelta(days=1, seconds=1), "P1DT1S"),
    (timedelta(days=400, hours=1, minutes=2, seconds=3), "P400DT1H2M3S"),
])
def test_durations_written(value, text):
    assert format_duration(value) == text


@pytest.mark.parametrize("value", [timedelta(seconds=-1), timedelta(milliseconds=1500), timedelta(microseconds=1)])
def test_durations_that_cannot_be_written(value):
    with pytest.raises(ValueError):
        format_duration(value)


@SETTINGS
@given(seconds=st.integers(0, int(MAX_DURATION.total_seconds())))
def test_format_duration_round_trip(seconds):
    value = timedelta(seconds=seconds)
    text = format_duration(value)
    assert XSD_DURATION.fullmatch(text)
    assert parse_duration(text) == value


# --------------------------------------------------------------------------- date-times


@pytest.mark.parametrize("text,expected", [
    ("2030-01-02T03:04:05Z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("2030-01-02T03:04:05.5Z", datetime(2030, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc)),
    ("2030-01-02T03:04:05.123456Z", datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)),
    ("1900-01-01T00:00:00Z", EARLIEST),
    ("8999-12-31T23:59:59Z", datetime(8999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
    (" 2030-01-02T03:04:05Z ", datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
])
def test_datetimes_read(text, expected):
    value = parse_datetime(text)
    assert value == expected
    assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", [
    "2030-01-02T03:04:05",  # no zone: "floating", schema-valid, unusable
    "2030-01-02T03:04:05+00:00",
    "9999-12-31T00:00:00Z",  # any duration added would overflow
    "9000-01-01T00:00:00Z",  # LATEST is exclusive
    "1899-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "2030-01-02T24:00:00Z",  # xs:dateTime allows 24:00:00; Python does not
    "+2030-01-02T03:04:05Z",  # xs:dateTime allows a sign
    "-2030-01-02T03:04:05Z",
    "2030-13-01T00:00:00Z",
    "2030-02-30T00:00:00Z",
    "Z",
    "",
])
def test_datetimes_refused(text):
    with pytest.raises(InvalidValue):
        parse_datetime(text)


def test_datetimes_written():
    assert format_datetime(datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2030-01-02T03:04:05Z"
    assert format_datetime(datetime(2030, 1, 2, 3, 4, 5, 7, tzinfo=timezone.utc)) == "2030-01-02T03:04:05.000007Z"
    # Another zone is written as the same instant in UTC.
    assert format_datetime(datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))) == \
        "2030-01-02T08:04:05Z"


@SETTINGS
@given(value=st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(8999, 12, 30),
                          timezones=st.builds(lambda minutes: timezone(timedelta(minutes=minutes)),
                                              st.integers(-23 * 60 - 59, 23 * 60 + 59))))
def test_format_datetime_round_trip(value):
    text = format_datetime(value)
    assert XSD_DATETIME.fullmatch(text) and text.endswith("Z")
    assert parse_datetime(text) == value


# --------------------------------------------------------------------------- numbers, booleans


@pytest.mark.parametrize("text,expected", [
    ("1.5", 1.5), ("-0", 0.0), ("1e10", 1e10), ("1E-3", 0.001), (" 2 ", 2.0), ("3.4028235e38", 3.4028235e38),
    ("0." + "0" * 399 + "1", 0.0),  # underflows to zero: finite, kept
])
def test_floats_read(text, expected):
    assert parse_float(text) == expected


@pytest.mark.parametrize("text", ["INF", "-INF", "NaN", "1" * 400, "1e999", "-1e999", "abc", "", "1,5"])
def test_floats_refused(text):
    with pytest.raises(InvalidValue):
        parse_float(text)


@SETTINGS
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_format_float_round_trip(value):
    text = format_float(value)
    assert math.isfinite(float(text))
    assert parse_float(text) == value


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_floats_that_cannot_be_written(value):
    with pytest.raises(ValueError):
        format_float(value)


@pytest.mark.parametrize("text,expected", [
    ("0", 0), ("42", 42), ("4294967295", 2**32 - 1), (" 7 ", 7),
    ("007", 7), ("+5", 5), ("0" * 20 + "1", 1), ("0" * 5000, 0),  # xs:unsignedInt lexical forms
])
def test_ints_read(text, expected):
    assert parse_int(text) == expected


@pytest.mark.parametrize("text", ["-1", "1.0", "abc", "", "+", "12345678901", "1" * 5000, "\u00b2", "\u0663", "1 2"])
def test_ints_refused(text):
    with pytest.raises(InvalidValue):
        parse_int(text)


@SETTINGS
@given(value=st.integers(0, 2**32 - 1), sign=st.sampled_from(["", "+"]), zeros=st.integers(0, 30),
       space=st.sampled_from(["", " ", "\n\t"]))
def test_every_unsigned_int_form_reads(value, sign, zeros, space):
    assert parse_int(f"{space}{sign}{'0' * zeros}{value}{space}") == value


@pytest.mark.parametrize("text,expected", [
    ("true", True), ("1", True), (" true ", True), ("false", False), ("0", False), (" false\n", False)])
def test_booleans(text, expected):
    assert parse_bool(text) is expected
    assert parse_bool(format_bool(expected)) is expected
