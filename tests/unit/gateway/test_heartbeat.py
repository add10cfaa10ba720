"""Heartbeat windows: one per interval per VEN, and a fleet's windows do not all end together."""

from __future__ import annotations

from adrstack.gateway.handlers import heartbeat_window


def test_one_window_per_interval_for_a_ven():
    windows = {heartbeat_window("ven-abc", 1_000_000 + t, 60) for t in range(0, 600)}
    assert len(windows) in (10, 11)


def test_a_fleets_windows_end_at_different_moments():
    # The second of the minute at which each VEN's window changes.
    ends = set()
    for i in range(1000):
        ven = f"ven-{i:012x}"
        first = heartbeat_window(ven, 0, 60)
        ends.add(next(t for t in range(61) if heartbeat_window(ven, t, 60) != first))
    assert len(ends) > 50
