"""Durations too long for any calendar are the caller's mistake (INVALID, field named), not a
raw OverflowError, and nothing is sent to the scheduler."""

from __future__ import annotations

import pytest

from .helpers import gql
from .test_mutations import CREATE, intervals


@pytest.mark.parametrize("change, field", [
    ({"intervals": intervals(("PT99999999999999999999H", 1))}, "intervals[0].duration"),
    ({"intervals": intervals(("P9999999999W", 1))}, "intervals[0].duration"),
    ({"rampUp": "PT99999999999999999999M"}, "rampUp"),
])
async def test_overflowing_durations_are_invalid_input(client, scheduler, change, field):
    data = await gql(client, CREATE, {"input": {"venIds": ["ven-a"], "intervals": intervals(("PT1H", 1)), **change}})
    assert data["data"] is None
    (error,) = data["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": field}, error
    assert error["message"].startswith(f"{field}: ")
    assert scheduler.requests == []
