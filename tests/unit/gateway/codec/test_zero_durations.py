"""A zero notification / rampUp / recovery / randomization means none: the oadrEvent omits it and
stays valid 2.0b; a non-zero one is written."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.gateway.events import render_checked
from adrstack.shared.messages import DrEvent, EventInterval, EventStatus, EventTargets

START = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def event(value: timedelta) -> DrEvent:
    return DrEvent(
        event_id="e1", status=EventStatus.FAR, start_at=START,
        intervals=[EventInterval(duration=timedelta(hours=1), payload=2)], targets=EventTargets(ven_ids=["v"]),
        notification=value, ramp_up=value, recovery=value, randomization=value,
    )


def test_zero_durations_are_left_out_and_the_event_stays_valid():
    xml = render_checked(event(timedelta(0)), EventStatus.FAR, None).for_ven("v")  # schema-validated
    for tag in ("x-eiNotification", "x-eiRampUp", "x-eiRecovery", "startafter"):
        assert tag not in xml


def test_non_zero_durations_are_written():
    xml = render_checked(event(timedelta(minutes=10)), EventStatus.FAR, None).for_ven("v")
    for tag in ("x-eiNotification", "x-eiRampUp", "x-eiRecovery", "startafter"):
        assert f"{tag}>" in xml
    assert xml.count("PT10M") == 4
