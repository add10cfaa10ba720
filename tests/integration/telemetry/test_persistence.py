"""Every fact type lands in its table, idempotently, and in the right final state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.shared.messages import (
    DrEvent,
    EventInterval,
    EventStatus,
    EventTargets,
    EventTransition,
    OptResponse,
    Reading,
    ReportData,
    ReportDescription,
    ReportsRegistered,
    Transition,
    VenDeregistered,
    VenRegistered,
    VenSeen,
)
from tests.helpers import eventually

T0 = datetime.now(timezone.utc).replace(microsecond=0)


def dr_event(status: EventStatus, n: int = 0, payload: float = 2.0) -> DrEvent:
    return DrEvent(
        event_id="ev-1",
        modification_number=n,
        status=status,
        start_at=T0 + timedelta(minutes=1),
        intervals=[EventInterval(duration=timedelta(hours=1), payload=payload)],
        targets=EventTargets(ven_ids=["ven-1"]),
    )


def transition(status: EventStatus, kind: Transition, n: int = 0, **kw) -> EventTransition:
    return EventTransition(event_id="ev-1", transition=kind, event=dr_event(status, n, **kw))


def report(values: list[float], at: datetime = T0) -> ReportData:
    return ReportData(
        ven_id="ven-1",
        report_specifier_id="rs-1",
        readings=[
            Reading(report_specifier_id="rs-1", r_id="power", at=at + timedelta(seconds=10 * i), value=v, unit="W")
            for i, v in enumerate(values)
        ],
    )


async def test_each_fact_type_is_stored(harness):
    s = harness.subjects
    await harness.start_consumer()
    reg = VenRegistered(ven_id="ven-1", ven_name="building-1", registration_id="reg-1", occurred_at=T0)
    await harness.publish(s.ven_registered("ven-1"), reg)
    await harness.publish(s.seen("ven-1"), VenSeen(ven_id="ven-1", occurred_at=T0 + timedelta(seconds=5)))
    await harness.publish(
        s.report_registered("ven-1"),
        ReportsRegistered(
            ven_id="ven-1",
            reports=[ReportDescription(report_specifier_id="rs-1", report_name="TELEMETRY_USAGE", r_id="power", unit="W")],
        ),
    )
    await harness.publish(s.report_data("ven-1"), report([1.0, 2.0, 3.0]))
    opt = OptResponse(ven_id="ven-1", event_id="ev-1", modification_number=0, opt_type="optIn")
    await harness.publish(s.opt("ven-1"), opt)
    created = transition(EventStatus.NEAR, Transition.CREATED)
    await harness.publish(s.event("ev-1", "created"), created)

    async def all_there():
        return (
            await harness.scalar("select count(*) from readings") == 3
            and await harness.scalar("select count(*) from event_transitions") == 1
            and await harness.scalar("select count(*) from dr_events") == 1
            and await harness.scalar("select count(*) from event_responses") == 1
            and await harness.scalar("select count(*) from report_descriptions") == 1
            and await harness.scalar("select last_seen_at from vens") is not None
        )

    await eventually(all_there, timeout=15, message="rows for every fact")
    ven = (await harness.rows("select ven_id, ven_name, registration_id, registered_at, last_seen_at from vens"))[0]
    assert ven == ("ven-1", "building-1", "reg-1", T0, T0 + timedelta(seconds=5))
    readings = await harness.rows("select ven_id, r_id, value, unit from readings order by at")
    assert readings == [("ven-1", "power", 1.0, "W"), ("ven-1", "power", 2.0, "W"), ("ven-1", "power", 3.0, "W")]
    assert await harness.rows("select report_name, unit from report_descriptions") == [("TELEMETRY_USAGE", "W")]
    assert await harness.rows("select id, opt_type, event_id from event_responses") == [(opt.id, "optIn", "ev-1")]
    assert await harness.rows("select id, transition, status from event_transitions") == [(created.id, "created", "near")]
    row = (await harness.rows("select status, intervals, targets, end_at from dr_events"))[0]
    assert row[0] == "near" and row[1] == [{"duration": "PT1H", "payload": 2.0}]
    assert row[2]["ven_ids"] == ["ven-1"] and row[3] == T0 + timedelta(minutes=61)

    await harness.publish(s.ven_deregistered("ven-1"), VenDeregistered(ven_id="ven-1", occurred_at=T0 + timedelta(minutes=1)))
    await eventually(lambda: harness.scalar("select deregistered_at from vens"), timeout=10, message="deregistered")
    # Acked everything: nothing left for the durable.
    info = await harness.consumer_info()
    assert info.num_pending == 0 and info.num_ack_pending == 0


async def test_an_open_ended_event_is_stored_without_an_end(harness):
    """Rule 47: an event of duration 0 is stored with end_at null."""
    await harness.start_consumer()
    event = dr_event(EventStatus.NEAR).model_copy(update={
        "intervals": [EventInterval(duration=timedelta(0), payload=1.0)]})
    created = EventTransition(event_id="ev-1", transition=Transition.CREATED, event=event)
    await harness.publish(harness.subjects.event("ev-1", "created"), created)
    await eventually(lambda: harness.scalar("select count(*) from dr_events"), timeout=15, message="the event row")
    assert await harness.rows("select end_at, intervals from dr_events") == [(None, [{"duration": "PT0S", "payload": 1.0}])]


async def test_reregistration_keeps_the_first_registration_time(harness):
    s = harness.subjects
    await harness.start_consumer()
    first = VenRegistered(ven_id="ven-1", ven_name="b1", registration_id="reg-1", occurred_at=T0)
    dereg = VenDeregistered(ven_id="ven-1", occurred_at=T0 + timedelta(minutes=1))
    again = VenRegistered(ven_id="ven-1", ven_name="b1", registration_id="reg-2", occurred_at=T0 + timedelta(minutes=2))
    for subject, fact in ((s.ven_registered("ven-1"), first), (s.ven_deregistered("ven-1"), dereg), (s.ven_registered("ven-1"), again)):
        await harness.publish(subject, fact)
    # A stale heartbeat must not move last_seen_at back; one for an unknown VEN creates nothing.
    await harness.publish(s.seen("ven-1"), VenSeen(ven_id="ven-1", occurred_at=T0 + timedelta(minutes=3)))
    await harness.publish(s.seen("ven-1"), VenSeen(ven_id="ven-1", occurred_at=T0))
    await harness.publish(s.seen("ghost"), VenSeen(ven_id="ghost"))

    async def settled():
        info = await harness.consumer_info()
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(settled, timeout=10, message="all acked")
    assert await harness.rows("select ven_id, registration_id, registered_at, deregistered_at, last_seen_at from vens") == [
        ("ven-1", "reg-2", T0, None, T0 + timedelta(minutes=3))
    ]


async def test_event_snapshot_never_regresses(harness):
    s = harness.subjects
    await harness.start_consumer()
    await harness.publish(s.event("ev-1", "active"), transition(EventStatus.ACTIVE, Transition.ACTIVE))

    async def status():
        rows = await harness.rows("select status, modification_number from dr_events")
        return rows[0] if rows else None

    assert await eventually(status, timeout=10) == ("active", 0)
    # The created fact arrives late (e.g. redelivered): it is recorded, but not as the current state.
    await harness.publish(s.event("ev-1", "created"), transition(EventStatus.NEAR, Transition.CREATED))
    await eventually(lambda: _equals(harness.scalar("select count(*) from event_transitions"), 2), timeout=10)
    assert await status() == ("active", 0)
    # A modification is newer whatever its status.
    await harness.publish(s.event("ev-1", "modified"), transition(EventStatus.FAR, Transition.MODIFIED, n=1, payload=3.0))
    await eventually(lambda: _equals(status(), ("far", 1)), timeout=10, message="modification applied")
    assert await harness.scalar("select intervals from dr_events") == [{"duration": "PT1H", "payload": 3.0}]


async def _equals(awaitable, expected) -> bool:
    return (await awaitable) == expected
