"""Hypothesis strategies shared by the codec's tests: 2.0b text, date-times, durations, numbers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st
from openleadr import enums

from adrstack.gateway.codec.values import MAX_DURATION

XML_SPECIALS = "&<>\"'"

# Every character XML 1.0 element text can carry, except control characters (category Cc:
# XML forbids most of them, and \t \n \r are not kept as written: a parser normalises \r, and
# openleadr's flatten_xml re-joins the lines of a rendered template, dropping a \n and the
# spaces around it), surrogates and unassigned code points (U+FFFE/U+FFFF are not XML).
_CHARACTER = st.one_of(
    st.sampled_from(XML_SPECIALS + " "),
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")),
)
# The same without any whitespace, for xs:token values (the schema collapses whitespace in
# them and the codec strips them, so a generated token must not depend on either).
_TOKEN_CHARACTER = st.one_of(
    st.sampled_from(XML_SPECIALS),
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Zs", "Zl", "Zp")).filter(
        lambda c: not c.isspace()),
)

# An xs:string id or free text: XML-special characters, non-ASCII, inner and outer spaces.
text = st.text(_CHARACTER, min_size=1, max_size=16)


def openleadr_reads_back(value: str) -> bool:
    # openleadr's parse_message (xmltodict + utils.normalize_dict) does not hand back every
    # string as written: xmltodict strips surrounding whitespace (str.strip(), so any Unicode
    # space), and normalize_dict turns 'true'/'false' into booleans, strings matching
    # ^-?\d+$ into ints and ^-?[\d.]+$ into floats (\d being any Unicode digit; "." or "1.2.3"
    # even makes it raise). Text the VTN renders is compared with what openleadr reads, so it
    # is generated without those shapes; test_parse_oracle covers them in the other direction.
    return (value == value.strip() and value not in ("true", "false")
            and re.match(r"^-?[\d.]+$", value) is None)


# Text for the render direction: everything `text` has, minus what openleadr cannot read back.
ol_text = text.filter(openleadr_reads_back)

# An extension token, as the enumerations with an "x-" escape (reportName, readingType,
# reportType, optReason, signalName...) allow: pattern x-\S.*, after whitespace collapse.
x_token = st.text(_TOKEN_CHARACTER, min_size=1, max_size=10).map(lambda s: "x-" + s)

# emix:marketContext is an xs:anyURI; '&' and "'" are URI characters that XML must escape.
market_context = st.text(st.sampled_from("abcxyz019-._~&=?/'"), min_size=1, max_size=12).map(
    lambda s: "http://market.example/" + s)

# Aware UTC date-times, microseconds included (both codecs write them).
datetimes = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 12, 31, 23, 59, 59),
                         timezones=st.just(timezone.utc))

# Whole-second durations > 0 up to the longest the codec accepts (openleadr writes zero as "P").
durations = st.integers(1, int(MAX_DURATION.total_seconds())).map(lambda s: timedelta(seconds=s))
durations_or_zero = st.integers(0, int(MAX_DURATION.total_seconds())).map(lambda s: timedelta(seconds=s))

floats = st.floats(allow_nan=False, allow_infinity=False)
unsigned_ints = st.integers(0, 2**32 - 1)
response_codes = st.integers(0, 999)

reading_types = st.one_of(st.sampled_from(enums.READING_TYPE.values), x_token)
report_types = st.one_of(st.sampled_from(enums.REPORT_TYPE.values), x_token)
data_qualities = st.one_of(st.sampled_from([
    "No Quality - No Value", "No New Value - Previous Value Used", "Quality Bad - Non Specific",
    "Quality Good - Non Specific", "Quality Limit - Field/High"]), x_token)
opt_reasons = st.one_of(st.sampled_from(enums.OPT_REASON.values), x_token)
signal_types = st.sampled_from(["delta", "level", "multiplier", "price", "priceMultiplier", "priceRelative",
                                "setpoint", "x-loadControlCapacity", "x-loadControlLevelOffset",
                                "x-loadControlPercentOffset", "x-loadControlSetpoint"])
signal_names = st.one_of(st.sampled_from(["SIMPLE", "simple", "ELECTRICITY_PRICE", "ENERGY_PRICE", "DEMAND_CHARGE",
                                          "BID_PRICE", "BID_LOAD", "BID_ENERGY", "CHARGE_STATE", "LOAD_DISPATCH",
                                          "LOAD_CONTROL"]), x_token)
