"""API tokens: their format, hashing, names and the order of roles."""

from __future__ import annotations

import hashlib

import pytest

from adrstack.runtime.options import ROLES
from adrstack.shared.api_tokens import (
    InvalidTokenName,
    Role,
    check_name,
    hash_secret,
    parse_token,
    secret_matches,
)

SECRET = "h0qlH16v3gL-nctQQGzOOqjYA9adFz5fDbIhj0jeEn8"
TOKEN = f"adrs_33487f592b51_{SECRET}"


def test_a_token_is_its_id_and_its_secret():
    assert parse_token(TOKEN) == ("33487f592b51", SECRET)
    assert parse_token(f"  {TOKEN}\n") == ("33487f592b51", SECRET)
    # The secret may itself hold underscores: only the first two separate the parts.
    assert parse_token("adrs_33487f592b51_" + "_" * 43) == ("33487f592b51", "_" * 43)


@pytest.mark.parametrize("text", [
    None, 42, "", "adrs", "Bearer " + TOKEN, TOKEN[:-1], TOKEN + "x", TOKEN.replace("adrs_", "adrx_"),
    TOKEN.replace("33487f592b51", "33487F592B51"), TOKEN.replace("33487f592b51", "33487f592b5"),
    TOKEN[:-1] + "!", TOKEN[:-1] + "\x00",
])
def test_anything_else_is_not_a_token(text):
    assert parse_token(text) is None


def test_only_the_hash_of_the_secret_is_kept_and_compared():
    digest = hash_secret(SECRET)
    assert digest == hashlib.sha256(SECRET.encode()).hexdigest()
    assert SECRET not in digest
    assert secret_matches(SECRET, digest)
    assert not secret_matches(SECRET[:-1] + "A", digest)


def test_roles_are_ordered_viewer_operator_admin():
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.ADMIN.allows(Role.VIEWER) and Role.ADMIN.allows(Role.ADMIN)
    assert Role.OPERATOR.allows(Role.VIEWER) and not Role.OPERATOR.allows(Role.ADMIN)
    assert not Role.VIEWER.allows(Role.OPERATOR) and Role.VIEWER.allows(Role.VIEWER)


def test_the_command_line_offers_exactly_the_roles():
    assert ROLES == tuple(r.value for r in Role)


def test_names():
    assert check_name(None) is None
    assert check_name("  ci bot ") == "ci bot"
    for bad in ("", "   ", "x" * 101, "a\nb", "a\x00b"):
        with pytest.raises(InvalidTokenName):
            check_name(bad)
