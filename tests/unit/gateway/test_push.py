"""The push retry schedule and the push VEN's address rules (pure logic)."""

from __future__ import annotations

import pytest

from adrstack.gateway.errors import INVALID_DATA, OpenAdrError
from adrstack.gateway.handlers import push_address
from adrstack.gateway.push import backoff_delay, push_url


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap():
    top = [backoff_delay(n, 1.0, 60.0, rand=lambda: 1.0) for n in range(1, 10)]
    assert top == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    bottom = [backoff_delay(n, 1.0, 60.0, rand=lambda: 0.0) for n in range(1, 10)]
    assert bottom == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]  # equal jitter: never below half


def test_backoff_jitter_stays_within_the_upper_half_and_a_huge_count_does_not_overflow():
    for n in (1, 3, 7):
        base = min(60.0, 2.0 ** (n - 1))
        assert base / 2 <= backoff_delay(n, 1.0, 60.0) <= base
    assert backoff_delay(10_000, 1.0, 60.0, rand=lambda: 0.5) == 45.0
    assert backoff_delay(0, 1.0, 60.0, rand=lambda: 1.0) == 1.0


def test_push_url_is_the_eievent_service_under_the_address_with_or_without_a_slash():
    assert push_url("http://ven.example:8081/oadr/") == "http://ven.example:8081/oadr/EiEvent"
    assert push_url("http://ven.example:8081/oadr") == "http://ven.example:8081/oadr/EiEvent"
    assert push_url("https://ven.example") == "https://ven.example/EiEvent"


@pytest.mark.parametrize("address", ["http://ven.example:8081/", "https://10.0.0.7/oadr", "http://[::1]:9000/x"])
def test_absolute_http_addresses_are_accepted(address):
    assert push_address(address, tls=False) == address


@pytest.mark.parametrize("address", [None, "", "None", "ven.example", "/relative", "ftp://ven.example/",
                                     "http://", "http://u:p@ven.example/", "http://ven.example:0/",
                                     "http://ven.example:70000/", "http://ven .example/", "http://ven.example/#x",
                                     "http://ven.example/" + "a" * 2048])
def test_other_addresses_are_refused_with_454_naming_the_field(address):
    with pytest.raises(OpenAdrError) as e:
        push_address(address, tls=False)
    assert e.value.code == INVALID_DATA and "oadrTransportAddress" in e.value.description


def test_with_tls_only_https_is_accepted():
    assert push_address("https://ven.example/", tls=True)
    with pytest.raises(OpenAdrError, match="https"):
        push_address("http://ven.example/", tls=True)
