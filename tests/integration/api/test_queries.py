"""GraphQL queries read what telemetry stored in Postgres, under the contract's names."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared.tables import DrEventRow, EventOptStateRow, EventResponseRow, ReadingRow, Ven

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


@pytest.fixture
async def opt_history(engine, seeded):
    """ev-3: ven-a opts in to mod 1, out, then in to mod 2; ven-b opts in to mod 2; ven-c, also
    targeted, never answers. As telemetry writes them: history rows and one state row per VEN."""
    rows = [("ven-a", 1, "optIn", 0), ("ven-a", 1, "optOut", 60), ("ven-a", 2, "optIn", 120), ("ven-b", 2, "optIn", 30)]
    ids = [uuid.uuid4() for _ in rows]
    async with AsyncSession(engine) as s:
        s.add(DrEventRow(
            event_id="ev-3", modification_number=2, status="active", signal_name="SIMPLE", signal_type="level",
            start_at=T0, end_at=T0 + timedelta(hours=1), intervals=[{"duration": "PT1H", "payload": 1.0}],
            targets={"ven_ids": ["ven-a", "ven-b", "ven-c"]}, market_context="http://MarketContext1",
            response_required="always", created_at=T0 - timedelta(days=2), modified_at=T0, snapshot={},
        ))
        for i, (ven, mod, opt, secs) in zip(ids, rows):
            s.add(EventResponseRow(id=i, ven_id=ven, event_id="ev-3", modification_number=mod, opt_type=opt,
                                   source="oadrCreatedEvent", responded_at=T0 + timedelta(seconds=secs)))
        await s.flush()
        for i, (ven, mod, opt, secs) in [(ids[2], rows[2]), (ids[3], rows[3])]:
            s.add(EventOptStateRow(ven_id=ven, event_id="ev-3", modification_number=mod, opt_type=opt,
                                   source="oadrCreatedEvent", responded_at=T0 + timedelta(seconds=secs), response_id=i))
        s.add(EventOptStateRow(ven_id="ven-b", event_id="ev-1", modification_number=2, opt_type="optOut",
                               source="oadrCreatedEvent", responded_at=T0 + timedelta(seconds=20), response_id=ids[0]))
        await s.commit()


OPT_FIELDS = """eventId responses { venId optType modificationNumber respondedAt }
  currentResponses { venId optType modificationNumber respondedAt }
  responseSummary { optedIn optedOut noResponse }"""


async def test_current_answers_history_and_summary_of_one_event(client, opt_history):
    data = await gql(client, "query($id: String!) { event(eventId: $id) { %s } }" % OPT_FIELDS, {"id": "ev-3"})
    assert "errors" not in data, data
    assert data["data"]["event"] == {
        "eventId": "ev-3",
        "responses": [
            {"venId": "ven-a", "optType": "optIn", "modificationNumber": 1, "respondedAt": "2030-03-01T12:00:00+00:00"},
            {"venId": "ven-b", "optType": "optIn", "modificationNumber": 2, "respondedAt": "2030-03-01T12:00:30+00:00"},
            {"venId": "ven-a", "optType": "optOut", "modificationNumber": 1, "respondedAt": "2030-03-01T12:01:00+00:00"},
            {"venId": "ven-a", "optType": "optIn", "modificationNumber": 2, "respondedAt": "2030-03-01T12:02:00+00:00"},
        ],
        "currentResponses": [
            {"venId": "ven-a", "optType": "optIn", "modificationNumber": 2, "respondedAt": "2030-03-01T12:02:00+00:00"},
            {"venId": "ven-b", "optType": "optIn", "modificationNumber": 2, "respondedAt": "2030-03-01T12:00:30+00:00"},
        ],
        "responseSummary": {"optedIn": 2, "optedOut": 0, "noResponse": 1},
    }


async def test_events_list_preloads_the_same_current_answers_and_summaries(client, opt_history):
    data = await gql(client, "{ events { %s } }" % OPT_FIELDS)
    assert "errors" not in data, data
    by_id = {e["eventId"]: e for e in data["data"]["events"]}
    assert [r["venId"] for r in by_id["ev-3"]["currentResponses"]] == ["ven-a", "ven-b"]
    assert by_id["ev-3"]["responseSummary"] == {"optedIn": 2, "optedOut": 0, "noResponse": 1}
    assert by_id["ev-1"]["currentResponses"] == [
        {"venId": "ven-b", "optType": "optOut", "modificationNumber": 2, "respondedAt": "2030-03-01T12:00:20+00:00"}]
    assert by_id["ev-1"]["responseSummary"] == {"optedIn": 0, "optedOut": 1, "noResponse": 1}
    assert by_id["ev-2"]["currentResponses"] == []
    assert by_id["ev-2"]["responseSummary"] == {"optedIn": 0, "optedOut": 0, "noResponse": 1}


async def test_no_response_is_unknown_when_groups_are_targeted(client, engine, opt_history):
    async with AsyncSession(engine) as s:
        row = await s.get(DrEventRow, "ev-3")
        row.targets = {"ven_ids": ["ven-a"], "group_ids": ["g-1"]}
        await s.commit()
    q = "query($id: String!) { event(eventId: $id) { responseSummary { optedIn optedOut noResponse } } }"
    data = await gql(client, q, {"id": "ev-3"})
    assert data["data"]["event"]["responseSummary"] == {"optedIn": 2, "optedOut": 0, "noResponse": None}


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


async def test_readings_across_day_partitions_in_a_total_order(client, engine, seeded):
    """Points of one time differ by rID and report specifier only: they come in that order, and
    a window spanning days (partitions, and the default one) reads them all."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    yesterday = now - timedelta(days=1)
    async with AsyncSession(engine) as s:
        s.add(Ven(ven_id="ven-c", ven_name="building-c", registration_id="reg-c", registered_at=T0, updated_at=T0))
        for at in (now, yesterday):
            for rs, r_id in (("rs-2", "b"), ("rs-1", "b"), ("rs-9", "a")):
                s.add(ReadingRow(ven_id="ven-c", report_specifier_id=rs, r_id=r_id, at=at, value=1.0,
                                 received_at=at, unit=rs))
        far = datetime(2999, 1, 1, tzinfo=timezone.utc)  # the default partition's
        s.add(ReadingRow(ven_id="ven-c", report_specifier_id="rs-1", r_id="a", at=far, value=2.0, received_at=now,
                         unit="rs-1"))
        await s.commit()
    q = """query($ven: String!, $since: DateTime) { readings(venId: $ven, since: $since) { rId at unit } }"""
    data = await gql(client, q, {"ven": "ven-c", "since": yesterday.isoformat()})
    got = [(r["rId"], r["unit"], r["at"]) for r in data["data"]["readings"]]
    assert got == [("a", "rs-1", "2999-01-01T00:00:00+00:00")] + [
        (r_id, rs, at.isoformat())
        for at in (now, yesterday) for r_id, rs in (("a", "rs-9"), ("b", "rs-1"), ("b", "rs-2"))]


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
