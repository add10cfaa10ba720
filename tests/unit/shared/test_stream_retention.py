"""The facts stream's retention comes from the settings (age and size), with stated defaults."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from adrstack.shared.jetstream import stream_config
from adrstack.shared.settings import CommonSettings


def test_defaults_keep_a_week_and_at_most_8_gib():
    config = stream_config(CommonSettings())
    assert config.max_age == timedelta(days=7).total_seconds()
    assert config.max_bytes == 8 * 1024**3


def test_age_and_size_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ADRSTACK_STREAM_MAX_AGE", "P2D")
    monkeypatch.setenv("ADRSTACK_STREAM_MAX_BYTES", "1048576")
    config = stream_config(CommonSettings())
    assert config.max_age == timedelta(days=2).total_seconds() and config.max_bytes == 1048576
    monkeypatch.setenv("ADRSTACK_STREAM_MAX_BYTES", "-1")
    assert stream_config(CommonSettings()).max_bytes == -1


@pytest.mark.parametrize("name, value", [("ADRSTACK_STREAM_MAX_AGE", "PT0S"), ("ADRSTACK_STREAM_MAX_BYTES", "-2")])
def test_nonsense_is_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        CommonSettings()
