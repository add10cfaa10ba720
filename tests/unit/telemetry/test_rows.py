"""Facts -> rows: what each fact writes and which row wins inside one batch."""

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
from adrstack.telemetry.rows import READING_COLUMNS, RowBatch, event_order, status_rank

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def event(status: EventStatus, n: int = 0) -> DrEvent:
    return DrEvent(
        event_id="e1",
        modification_number=n,
        status=status,
        start_at=T0,
        intervals=[EventInterval(duration=timedelta(hours=1), payload=2.0)],
        targets=EventTargets(ven_ids=["v1"]),
    )


def fact(status: EventStatus, transition: Transition, n: int = 0, at: datetime = T0) -> EventTransition:
    return EventTransition(event_id="e1", transition=transition, event=event(status, n), occurred_at=at)


def test_status_order_is_the_lifecycle_order():
    ranks = [status_rank(s) for s in ("far", "near", "active", "completed", "cancelled")]
    assert ranks == sorted(ranks) and len(set(ranks)) == 5
    assert event_order(event(EventStatus.FAR, n=1)) > event_order(event(EventStatus.COMPLETED, n=0))


def test_newest_event_snapshot_wins_inside_a_batch_whatever_the_order():
    batch = RowBatch.of(
        [
            fact(EventStatus.ACTIVE, Transition.ACTIVE),
            fact(EventStatus.NEAR, Transition.CREATED),  # older, arrives later
        ]
    )
    assert batch.events["e1"][1]["status"] == "active"
    assert len(batch.transitions) == 2
    batch.add(fact(EventStatus.FAR, Transition.MODIFIED, n=1))
    assert batch.events["e1"][1]["status"] == "far"
    assert batch.events["e1"][1]["modification_number"] == 1


def test_event_row_carries_iso_durations_and_the_snapshot():
    row = RowBatch.of([fact(EventStatus.ACTIVE, Transition.ACTIVE)]).events["e1"][1]
    assert row["intervals"] == [{"duration": "PT1H", "payload": 2.0}]
    assert row["targets"]["ven_ids"] == ["v1"]
    assert row["end_at"] == T0 + timedelta(hours=1)
    assert row["snapshot"]["event_id"] == "e1"


def test_transition_row_uses_the_message_id():
    f = fact(EventStatus.ACTIVE, Transition.ACTIVE)
    row = RowBatch.of([f]).transitions[0]
    assert row["id"] == f.id and row["status"] == "active" and row["transition"] == "active"


def test_readings_are_rows_in_column_order_and_keep_each_point():
    data = ReportData(
        ven_id="v1",
        report_specifier_id="rs1",
        readings=[
            Reading(report_specifier_id="rs1", r_id="p", at=T0, value=1.5, unit="W"),
            Reading(report_specifier_id="rs1", r_id="p", at=T0 + timedelta(seconds=10), value=2.5),
        ],
        occurred_at=T0 + timedelta(seconds=11),
    )
    batch = RowBatch.of([data, data])
    assert batch.reading_count == 2  # one row per point
    assert READING_COLUMNS == ("ven_id", "report_specifier_id", "r_id", "resource_id", "measurement", "unit", "at",
                               "value", "received_at")
    assert batch.readings[:2] == [
        ("v1", "rs1", "p", None, None, "W", T0, 1.5, T0 + timedelta(seconds=11)),
        ("v1", "rs1", "p", None, None, None, T0 + timedelta(seconds=10), 2.5, T0 + timedelta(seconds=11)),
    ]


def test_ven_facts_keep_stream_order_and_seen_keeps_the_latest():
    reg = VenRegistered(ven_id="v1", ven_name="n1", registration_id="r1", occurred_at=T0)
    dereg = VenDeregistered(ven_id="v1", occurred_at=T0 + timedelta(minutes=1))
    batch = RowBatch.of(
        [
            reg,
            VenSeen(ven_id="v1", occurred_at=T0 + timedelta(seconds=30)),
            VenSeen(ven_id="v1", occurred_at=T0 + timedelta(seconds=20)),
            dereg,
        ]
    )
    assert [k for k, _ in batch.ven_changes] == ["registered", "deregistered"]
    assert batch.ven_changes[0][1]["registered_at"] == T0
    assert batch.seen == {"v1": T0 + timedelta(seconds=30)}


def test_report_descriptions_collapse_per_point_to_the_latest():
    def reports(name, at):
        return ReportsRegistered(
            ven_id="v1",
            reports=[ReportDescription(report_specifier_id="rs1", report_name=name, r_id="p")],
            occurred_at=at,
        )

    batch = RowBatch.of([reports("new", T0 + timedelta(seconds=5)), reports("old", T0)])
    assert len(batch.descriptions) == 1
    assert next(iter(batch.descriptions.values()))["report_name"] == "new"


def test_opt_response_row():
    opt = OptResponse(ven_id="v1", event_id="e1", opt_type="optIn", modification_number=0, occurred_at=T0)
    row = RowBatch.of([opt]).responses[0]
    assert row["id"] == opt.id and row["responded_at"] == T0 and row["opt_type"] == "optIn"


def test_push_failed_is_accepted_and_writes_no_rows():
    from adrstack.shared.messages import PushFailed

    batch = RowBatch.of([PushFailed(ven_id="v1", event_ids=["e1"], attempt=1, error="connection"),
                         VenSeen(ven_id="v1", occurred_at=T0)])
    assert list(batch.seen) == ["v1"]
    assert not batch.ven_changes and not batch.responses and not batch.transitions


def test_the_first_reading_of_a_point_in_stream_order_wins():
    def data(value: float, unit: str, received: int) -> ReportData:
        return ReportData(ven_id="v1", report_specifier_id="rs1", occurred_at=T0 + timedelta(seconds=received),
                          readings=[Reading(report_specifier_id="rs1", r_id="p", at=T0, value=value, unit=unit)])

    batch = RowBatch.of([data(1.0, "W", 1), data(9.0, "kW", 2), data(5.0, "W", 0)])
    assert batch.readings == [("v1", "rs1", "p", None, None, "W", T0, 1.0, T0 + timedelta(seconds=1))]
    # The same instant in another time zone is the same point.
    other_zone = ReportData(ven_id="v1", report_specifier_id="rs1", readings=[
        Reading(report_specifier_id="rs1", r_id="p", at=T0.astimezone(timezone(timedelta(hours=2))), value=7.0)])
    assert RowBatch.of([data(1.0, "W", 1), other_zone]).reading_count == 1
