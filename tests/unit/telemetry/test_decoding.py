"""Subject-driven decoding: the right model for each subject, InvalidFact for everything else."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adrstack.shared.messages import (
    DrEvent,
    EventInterval,
    EventStatus,
    EventTargets,
    EventTransition,
    ReportData,
    Transition,
    VenSeen,
)
from adrstack.shared.subjects import Subjects
from adrstack.telemetry.decoding import InvalidFact, decode_fact

S = Subjects("t1")


def transition(event_id="e1", transition=Transition.ACTIVE) -> EventTransition:
    event = DrEvent(
        event_id=event_id,
        status=EventStatus.ACTIVE,
        start_at=datetime.now(timezone.utc),
        intervals=[EventInterval(duration=timedelta(hours=1), payload=1)],
        targets=EventTargets(ven_ids=["v1"]),
    )
    return EventTransition(event_id=event_id, transition=transition, event=event)


def test_ven_and_event_facts_decode_by_subject():
    seen = decode_fact(S, S.seen("v1"), VenSeen(ven_id="v1").to_bytes())
    assert isinstance(seen, VenSeen)
    data = ReportData(ven_id="v1", report_specifier_id="rs", readings=[])
    assert isinstance(decode_fact(S, S.report_data("v1"), data.to_bytes()), ReportData)
    fact = decode_fact(S, S.event("e1", "active"), transition().to_bytes())
    assert isinstance(fact, EventTransition) and fact.transition == Transition.ACTIVE


@pytest.mark.parametrize(
    "subject, data",
    [
        (S.report_data("v1"), b"not json"),
        (S.report_data("v1"), VenSeen(ven_id="v1").to_bytes()),  # wrong model for the subject
        ("t1.ven.v1.unknown", VenSeen(ven_id="v1").to_bytes()),
        ("other.ven.v1.seen", VenSeen(ven_id="v1").to_bytes()),
        (S.seen("v2"), VenSeen(ven_id="v1").to_bytes()),  # body and subject disagree
        (S.event("e2", "active"), transition("e1").to_bytes()),
        (S.event("e1", "completed"), transition("e1", Transition.ACTIVE).to_bytes()),
    ],
)
def test_undecodable_messages_are_invalid(subject, data):
    with pytest.raises(InvalidFact):
        decode_fact(S, subject, data)


def test_push_failed_is_a_ven_fact():
    from adrstack.shared.messages import PushFailed

    fact = PushFailed(ven_id="v1", event_ids=["e1"], attempt=2, error="http_status", http_status=500)
    decoded = decode_fact(S, S.push_failed("v1"), fact.to_bytes())
    assert isinstance(decoded, PushFailed)
    assert (decoded.event_ids, decoded.attempt, decoded.error, decoded.http_status) == (["e1"], 2, "http_status", 500)
    with pytest.raises(InvalidFact):
        decode_fact(S, S.push_failed("v2"), fact.to_bytes())
