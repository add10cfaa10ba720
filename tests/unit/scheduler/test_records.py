"""The events bucket's record format: a DrEvent plus the facts its commit still owes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from adrstack.scheduler.facts import decode_record, record_bytes
from adrstack.shared.events_mirror import decode_event, event_bytes
from adrstack.shared.messages import DrEvent, EventInterval, EventStatus, EventTargets, Transition

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
EVENT = DrEvent(
    event_id="e1", modification_number=2, status=EventStatus.FAR, start_at=NOW,
    intervals=[EventInterval(duration=timedelta(hours=1), payload=2)], targets=EventTargets(ven_ids=["v"]),
    created_at=NOW, modified_at=NOW,
)


def test_a_record_written_before_the_marker_existed_reads_as_settled():
    record = decode_record(event_bytes(EVENT))  # what the scheduler stored before pending_facts
    assert record.event == EVENT and record.pending == ()


def test_pending_facts_round_trip_and_other_readers_ignore_them():
    raw = record_bytes(EVENT, [Transition.MODIFIED, Transition.ACTIVE])
    assert json.loads(raw)["pending_facts"] == ["modified", "active"]
    record = decode_record(raw)
    assert record.event == EVENT and record.pending == (Transition.MODIFIED, Transition.ACTIVE)
    assert decode_event(raw) == EVENT  # the gateway's and the api's reading of the same value


def test_a_settled_record_has_no_marker():
    raw = record_bytes(EVENT)
    assert "pending_facts" not in json.loads(raw)
    assert decode_record(raw).pending == ()
