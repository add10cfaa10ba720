"""GraphQL optSchedules: what telemetry stored of the VENs' EiOpt schedules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared.tables import OptScheduleRow

from .helpers import gql

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
async def schedules(engine):
    def row(ven_id, opt_id, minutes, **extra):
        fields = dict(ven_id=ven_id, opt_id=opt_id, opt_type="optOut", resource_ids=["building-1"],
                      windows=[{"start": T0.isoformat(), "duration_seconds": 5400.0}],
                      sent_at=T0 + timedelta(minutes=minutes))
        fields.update(extra)
        return OptScheduleRow(**fields)

    async with AsyncSession(engine) as s:
        s.add_all([row("ven-a", "o1", 1, market_context="http://m/ctx", device_classes=["Hvac"]),
                   row("ven-a", "o2", 2, opt_type="optIn", event_id="ev-1", modification_number=0, windows=[]),
                   row("ven-b", "o1", 3, cancelled_at=T0 + timedelta(minutes=4))])
        await s.commit()


QUERY = """query($ven: String, $event: String, $all: Boolean!) {
  optSchedules(venId: $ven, eventId: $event, includeCancelled: $all) {
    venId optId optType marketContext eventId modificationNumber resourceIds deviceClasses sentAt cancelledAt
    windows { start duration }
  }
}"""


async def test_current_schedules_newest_first_with_their_windows(client, schedules):
    data = (await gql(client, QUERY, {"all": False}))["data"]["optSchedules"]
    assert [(s["venId"], s["optId"]) for s in data] == [("ven-a", "o2"), ("ven-a", "o1")]
    o1 = data[1]
    assert o1["windows"] == [{"start": "2030-03-01T12:00:00+00:00", "duration": "PT1H30M"}]
    assert o1["marketContext"] == "http://m/ctx" and o1["resourceIds"] == ["building-1"]
    assert o1["deviceClasses"] == ["Hvac"] and data[0]["deviceClasses"] == []  # P1_2030; none: the whole VEN
    assert data[0]["eventId"] == "ev-1" and data[0]["optType"] == "optIn"


async def test_filters_and_withdrawn_schedules(client, schedules):
    with_cancelled = (await gql(client, QUERY, {"all": True, "ven": "ven-b"}))["data"]["optSchedules"]
    assert [(s["optId"], s["cancelledAt"]) for s in with_cancelled] == [("o1", "2030-03-01T12:04:00+00:00")]
    assert (await gql(client, QUERY, {"all": False, "ven": "ven-b"}))["data"]["optSchedules"] == []
    by_event = (await gql(client, QUERY, {"all": False, "event": "ev-1"}))["data"]["optSchedules"]
    assert [s["optId"] for s in by_event] == ["o2"]
    bad = await gql(client, QUERY, {"all": False, "ven": "no such/ven"})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID"
