"""The Authorization header's Bearer token."""

import pytest

from adrstack.api.auth import bearer_token


@pytest.mark.parametrize("header, token", [
    ("Bearer adrs_x", "adrs_x"),
    ("bearer   adrs_x  ", "adrs_x"),
    ("BEARER adrs_x", "adrs_x"),
    ("Basic dXNlcjpwYXNz", None),
    ("Bearer", None),
    ("Bearer ", None),
    ("adrs_x", None),
    ("", None),
    (None, None),
    (42, None),
])
def test_bearer_token(header, token):
    assert bearer_token(header) == token
