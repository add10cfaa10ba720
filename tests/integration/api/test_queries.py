"""GraphQL queries read what telemetry stored in Postgres, under the contract's names."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared.tables import DrEventRow, EventResponseRow, ReadingRow, Ven

from .helpers import gql

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
async def seeded(engine):
    async with AsyncSession(engine) as s:
        s.add_all(
            [
                Ven(ven_id="ven-a", ven_name="building-a", registration_id="reg-a", registered_at=T0,
                    last_seen_at=T0 + timedelta(minutes=5), updated_at=T0),
                Ven(ven_id="ven-b", ven_name="building-b", registration_id="reg-b", registered_at=T0,
                    updated_at=T0),
                DrEventRow(
                    event_id="ev-1", modification_number=2, status="far", signal_name="SIMPLE",
                    signal_type="level", start_at=T0 + timedelta(hours=1), end_at=T0 + timedelta(hours=2, minutes=30),
                    intervals=[{"duration": "PT1H", "payload": 2.0}, {"duration": "PT30M", "payload": 1.0}],
                    targets={"ven_ids": ["ven-a", "ven-b"], "group_ids": []},
                    priority=1, market_context="http://MarketContext1", response_required="always",
                    created_at=T0, modified_at=T0, snapshot={"vtn_comment": "seeded"},
                ),
                DrEventRow(
                    event_id="ev-2", modification_number=0, status="completed", signal_name="SIMPLE",
                    signal_type="level", start_at=T0 - timedelta(hours=3), end_at=T0 - timedelta(hours=2),
                    intervals=[{"duration": 3600, "payload": 3}], targets={"ven_ids": ["ven-a"]},
                    market_context="http://MarketContext1", response_required="always",
                    created_at=T0 - timedelta(days=1), modified_at=T0 - timedelta(days=1), snapshot={},
                ),
                EventResponseRow(id=uuid.uuid4(), ven_id="ven-a", event_id="ev-1", modification_number=2,
                                 opt_type="optIn", source="oadrCreatedEvent", responded_at=T0 + timedelta(seconds=10)),
                EventResponseRow(id=uuid.uuid4(), ven_id="ven-b", event_id="ev-1", modification_number=2,
                                 opt_type="optOut", source="oadrCreatedEvent", responded_at=T0 + timedelta(seconds=20)),
            ]
            + [
                ReadingRow(ven_id="ven-a", report_specifier_id="rs-1", r_id="load", resource_id="meter-1",
                           measurement="realPower", unit="W", at=T0 + timedelta(minutes=i), value=1000.0 + i,
                           received_at=T0 + timedelta(minutes=i))
                for i in range(5)
            ]
            + [
                ReadingRow(ven_id="ven-b", report_specifier_id="rs-1", r_id="load", at=T0, value=7.0,
                           received_at=T0)
            ]
        )
        await s.commit()


async def test_vens(client, seeded):
    data = await gql(client, "{ vens { venId venName registrationId registeredAt lastSeenAt } }")
    assert "errors" not in data
    assert data["data"]["vens"] == [
        {"venId": "ven-a", "venName": "building-a", "registrationId": "reg-a",
         "registeredAt": "2030-03-01T12:00:00+00:00", "lastSeenAt": "2030-03-01T12:05:00+00:00"},
        {"venId": "ven-b", "venName": "building-b", "registrationId": "reg-b",
         "registeredAt": "2030-03-01T12:00:00+00:00", "lastSeenAt": None},
    ]


async def test_one_ven_and_an_unknown_one(client, seeded):
    q = "query($id: String!) { ven(venId: $id) { venId venName } }"
    assert (await gql(client, q, {"id": "ven-b"}))["data"]["ven"] == {"venId": "ven-b", "venName": "building-b"}
    assert (await gql(client, q, {"id": "nope"}))["data"]["ven"] is None


EVENT_FIELDS = """eventId status modificationNumber signalName signalType startAt endAt priority
  marketContext responseRequired createdAt vtnComment
  intervals { duration payload } targets { venIds } responses { venId optType respondedAt }"""


async def test_events(client, seeded):
    data = await gql(client, "{ events { %s } }" % EVENT_FIELDS)
    assert "errors" not in data, data
    events = data["data"]["events"]
    assert [e["eventId"] for e in events] == ["ev-1", "ev-2"]  # newest created first
    ev1, ev2 = events
    assert ev1 == {
        "eventId": "ev-1", "status": "far", "modificationNumber": 2, "signalName": "SIMPLE",
        "signalType": "level", "startAt": "2030-03-01T13:00:00+00:00", "endAt": "2030-03-01T14:30:00+00:00",
        "priority": 1, "marketContext": "http://MarketContext1", "responseRequired": "always",
        "createdAt": "2030-03-01T12:00:00+00:00", "vtnComment": "seeded",
        "intervals": [{"duration": "PT1H", "payload": 2.0}, {"duration": "PT30M", "payload": 1.0}],
        "targets": {"venIds": ["ven-a", "ven-b"]},
        "responses": [
            {"venId": "ven-a", "optType": "optIn", "respondedAt": "2030-03-01T12:00:10+00:00"},
            {"venId": "ven-b", "optType": "optOut", "respondedAt": "2030-03-01T12:00:20+00:00"},
        ],
    }
    assert ev2["intervals"] == [{"duration": "PT1H", "payload": 3.0}]
    assert ev2["responses"] == []


async def test_one_event(client, seeded):
    q = "query($id: String!) { event(eventId: $id) { eventId responses { venId optType } } }"
    data = await gql(client, q, {"id": "ev-1"})
    assert data["data"]["event"] == {
        "eventId": "ev-1",
        "responses": [{"venId": "ven-a", "optType": "optIn"}, {"venId": "ven-b", "optType": "optOut"}],
    }
    assert (await gql(client, q, {"id": "ev-404"}))["data"]["event"] is None


READINGS = """query($ven: String!, $since: DateTime, $until: DateTime, $limit: Int) {
  readings(venId: $ven, since: $since, until: $until, limit: $limit) { venId resourceId rId measurement at value unit } }"""


async def test_readings_newest_first(client, seeded):
    data = await gql(client, READINGS, {"ven": "ven-a"})
    readings = data["data"]["readings"]
    assert [r["value"] for r in readings] == [1004.0, 1003.0, 1002.0, 1001.0, 1000.0]
    assert readings[0] == {"venId": "ven-a", "resourceId": "meter-1", "rId": "load", "measurement": "realPower",
                           "at": "2030-03-01T12:04:00+00:00", "value": 1004.0, "unit": "W"}


async def test_readings_window_and_limit(client, seeded):
    data = await gql(client, READINGS, {"ven": "ven-a", "since": "2030-03-01T12:01:00Z",
                                        "until": "2030-03-01T14:04:00+02:00", "limit": 2})
    assert [r["value"] for r in data["data"]["readings"]] == [1003.0, 1002.0]
    other = await gql(client, READINGS, {"ven": "ven-b"})
    assert [r["value"] for r in other["data"]["readings"]] == [7.0]


@pytest.mark.parametrize("variables, field", [
    ({"since": "2030-03-01T12:01:00"}, "since"),
    ({"until": "2030-03-01T12:01:00"}, "until"),
    ({"limit": 0}, "limit"),
])
async def test_readings_bad_arguments_name_the_field(client, seeded, variables, field):
    data = await gql(client, READINGS, {"ven": "ven-a", **variables})
    assert data["data"] is None
    (error,) = data["errors"]
    assert error["message"].startswith(f"{field}: ")
    assert error["extensions"] == {"code": "INVALID", "field": field}
