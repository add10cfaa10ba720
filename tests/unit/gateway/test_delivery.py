"""When a VEN must be sent oadrDistributeEvent, and what it is shown."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.gateway.delivery import DeliveryRecord, plan_delivery, shown_only
from adrstack.shared.messages import DrEvent, EventInterval, EventStatus, EventTargets

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def event(event_id="e1", start=NOW + timedelta(hours=1), mod=0, status=EventStatus.FAR,
          response_required="always") -> DrEvent:
    return DrEvent(event_id=event_id, status=status, start_at=start, modification_number=mod,
                   intervals=[EventInterval(duration=timedelta(hours=1), payload=1)],
                   targets=EventTargets(ven_ids=["v"]), response_required=response_required)


def shown(plan):
    return [(e.event_id, e.modification_number, s.value) for e, s in plan.items]


def test_new_event_is_a_change_and_then_it_is_not():
    plan = plan_delivery([event()], DeliveryRecord(), NOW)
    assert plan.changed and shown(plan) == [("e1", 0, "far")]
    again = plan_delivery([event()], plan.record, NOW + timedelta(seconds=1))
    assert not again.changed


def test_modification_and_clock_transitions_are_changes():
    record = plan_delivery([event()], DeliveryRecord(), NOW).record
    assert plan_delivery([event(mod=1)], record, NOW).changed
    # far -> near (5 minutes before start by default) -> active
    assert plan_delivery([event()], record, NOW + timedelta(minutes=56)).changed
    near = plan_delivery([event()], record, NOW + timedelta(minutes=56))
    assert shown(near) == [("e1", 0, "near")]
    active = plan_delivery([event()], near.record, NOW + timedelta(hours=1, minutes=1))
    assert active.changed and shown(active) == [("e1", 0, "active")]


def test_completed_is_shown_once_then_dropped():
    active = plan_delivery([event(start=NOW - timedelta(minutes=30))], DeliveryRecord(), NOW)
    done = plan_delivery([event(start=NOW - timedelta(minutes=30))], active.record, NOW + timedelta(hours=1))
    assert done.changed and shown(done) == [("e1", 0, "completed")]
    after = plan_delivery([event(start=NOW - timedelta(minutes=30))], done.record, NOW + timedelta(hours=2))
    assert not after.changed and after.items == []


def test_cancelled_is_shown_once_to_vens_that_knew_the_event():
    """A cancellation that needs no answer (responseRequired=never) is shown once."""
    record = plan_delivery([event(response_required="never")], DeliveryRecord(), NOW).record
    cancelled = event(mod=1, status=EventStatus.CANCELLED, response_required="never")
    plan = plan_delivery([cancelled], record, NOW)
    assert plan.changed and shown(plan) == [("e1", 1, "cancelled")]
    assert not plan_delivery([cancelled], plan.record, NOW).changed
    # A VEN that never saw the event is not bothered with its end.
    assert plan_delivery([cancelled], DeliveryRecord(), NOW).items == []


def test_other_events_stay_in_the_distribution():
    record = plan_delivery([event("a"), event("b")], DeliveryRecord(), NOW).record
    plan = plan_delivery([event("a", mod=1), event("b")], record, NOW)
    assert plan.changed and {i for i, _, _ in shown(plan)} == {"a", "b"}


def test_event_that_vanished_from_kv_is_a_change_with_nothing_to_show():
    record = plan_delivery([event()], DeliveryRecord(), NOW).record
    plan = plan_delivery([], record, NOW)
    assert plan.changed and plan.items == [] and plan.record.pending == {}


def test_record_round_trips_through_json():
    record = plan_delivery([event()], DeliveryRecord(), NOW).record
    again = DeliveryRecord.from_json(record.to_bytes())
    assert again == record
    assert not plan_delivery([event()], again, NOW).changed


def test_record_written_by_the_previous_version_is_read():
    # The pydantic model of the spine wrote this form (with a seen_at we no longer keep).
    old = b'{"pending":{"e1":[0,"far"]},"delivered_at":"2030-01-01T12:00:00Z","seen_at":"2030-01-01T12:00:00Z"}'
    record = DeliveryRecord.from_json(old)
    assert record.pending == {"e1": (0, EventStatus.FAR)} and record.delivered_at == NOW
    assert not plan_delivery([event()], record, NOW).changed


# --------------------------------------------------------------------------- 2.0b delivery rules


def test_idle_plan_keeps_the_record_object():
    """Nothing changed: the same record comes back, so the poll writes nothing."""
    record = plan_delivery([event()], DeliveryRecord(), NOW).record
    again = plan_delivery([event()], record, NOW + timedelta(seconds=1))
    assert not again.changed and again.record is record


def test_untargeted_event_is_a_change_without_it_and_the_others_stay():
    """Rule 50 (A_E3_0440): every distribution carries all the VEN's events; one that no longer
    targets the VEN is left out, which a 2.0b VEN reads as its cancellation."""
    record = plan_delivery([event("a"), event("b")], DeliveryRecord(), NOW).record
    # "b" was retargeted away from this VEN: the mirror no longer lists it for the VEN.
    plan = plan_delivery([event("a")], record, NOW)
    assert plan.changed and shown(plan) == [("a", 0, "far")]
    assert plan.record.pending == {"a": (0, EventStatus.FAR)}
    assert not plan_delivery([event("a")], plan.record, NOW).changed
    # The last one goes too: an empty distribution (E1_1010's empty oadrDistributeEvent).
    last = plan_delivery([], plan.record, NOW)
    assert last.changed and last.items == [] and last.record.pending == {}
    assert not plan_delivery([], last.record, NOW).changed


def test_retargeted_back_is_a_change():
    record = plan_delivery([event("a")], DeliveryRecord(), NOW).record
    gone = plan_delivery([], record, NOW).record
    back = plan_delivery([event("a", mod=1)], gone, NOW)
    assert back.changed and shown(back) == [("a", 1, "far")]


def cancel_always(mod=1, **kw):
    return event(mod=mod, status=EventStatus.CANCELLED, response_required="always", **kw)


def test_unacknowledged_cancellation_is_shown_on_every_plan_until_acknowledged():
    """Rule 52: a cancelled event with responseRequired=always is re-sent until the VEN answers
    that modification with oadrCreatedEvent."""
    record = plan_delivery([event(), event("other")], DeliveryRecord(), NOW).record
    plans = []
    for n in range(3):
        plan = plan_delivery([cancel_always(), event("other")], record, NOW + timedelta(seconds=n))
        assert plan.changed, n
        # Still the whole set (rule 50).
        assert sorted(shown(plan)) == [("e1", 1, "cancelled"), ("other", 0, "far")]
        plans.append(plan)
        record = plan.record
    assert record.awaiting == {"e1": (1, 3)}
    # An answer to an older modification does not acknowledge the cancellation.
    assert record.acknowledged("e1", 0) is None
    assert record.acknowledged("nope", 1) is None
    acked = record.acknowledged("e1", 1)
    assert acked is not None and dict(acked.awaiting) == {} and acked.pending == record.pending
    after = plan_delivery([cancel_always(), event("other")], acked, NOW + timedelta(seconds=5))
    assert not after.changed and after.record is acked


def test_cancellation_is_resent_up_to_the_limit_then_dropped_without_a_send():
    """Rule 52's retry limit."""
    record = plan_delivery([event()], DeliveryRecord(), NOW).record
    sends = 0
    for _ in range(10):
        plan = plan_delivery([cancel_always()], record, NOW, max_sends=4)
        if not plan.changed:
            break
        sends += 1
        record = plan.record
    assert sends == 4
    assert dict(plan.record.awaiting) == {} and plan.record is not record  # pruned: written, not sent
    assert not plan_delivery([cancel_always()], plan.record, NOW, max_sends=4).changed


def test_cancellation_is_not_resent_after_its_scheduled_end():
    """Rule 52: '... until acknowledged, completed, or a retry limit'."""
    record = plan_delivery([event()], DeliveryRecord(), NOW).record
    first = plan_delivery([cancel_always()], record, NOW)
    assert first.changed and first.record.awaiting
    later = plan_delivery([cancel_always()], first.record, NOW + timedelta(hours=3))
    assert not later.changed and dict(later.record.awaiting) == {}


def test_cancellation_removed_from_the_bucket_stops_being_resent():
    record = plan_delivery([event()], DeliveryRecord(), NOW).record
    first = plan_delivery([cancel_always()], record, NOW).record
    plan = plan_delivery([], first, NOW)
    assert not plan.changed and dict(plan.record.awaiting) == {}


def test_a_newer_cancellation_restarts_the_count():
    record = plan_delivery([event()], DeliveryRecord(), NOW).record
    first = plan_delivery([cancel_always(mod=1)], record, NOW, max_sends=1).record
    assert not plan_delivery([cancel_always(mod=1)], first, NOW, max_sends=1).changed
    newer = plan_delivery([cancel_always(mod=2)], first, NOW, max_sends=1)
    assert newer.changed and newer.record.awaiting == {"e1": (2, 1)}


def test_a_cancellation_the_ven_never_saw_is_not_sent():
    assert not plan_delivery([cancel_always()], DeliveryRecord(), NOW).changed


def test_a_lagging_mirror_never_shows_an_older_modification():
    """Replicas: another replica already sent modification 2; this one's events mirror still
    holds modification 1. It sends nothing and keeps the record until its mirror catches up."""
    record = plan_delivery([event(mod=2)], DeliveryRecord(), NOW).record
    plan = plan_delivery([event(mod=1)], record, NOW)
    assert not plan.changed and plan.record is record
    awaiting = plan_delivery([cancel_always(mod=3)], record, NOW).record
    assert not plan_delivery([event(mod=2)], awaiting, NOW).changed


def test_record_with_awaiting_round_trips_and_old_records_still_read():
    record = plan_delivery([event()], DeliveryRecord(), NOW).record
    record = plan_delivery([cancel_always(), event("b")], record, NOW).record
    raw = record.to_bytes()
    assert b'"awaiting"' in raw
    again = DeliveryRecord.from_json(raw)
    assert again == record and again.awaiting == {"e1": (1, 1)}
    # Records without anything awaited are written as before (no new key).
    assert b"awaiting" not in plan_delivery([event()], DeliveryRecord(), NOW).record.to_bytes()
    old = DeliveryRecord.from_json(b'{"pending":{"e1":[0,"far"]},"delivered_at":null}')
    assert dict(old.awaiting) == {} and old.pending == {"e1": (0, EventStatus.FAR)}


def test_a_push_mark_travels_with_the_record_and_older_records_have_none():
    record = plan_delivery([event()], DeliveryRecord(), NOW).record.with_push(NOW)
    again = DeliveryRecord.from_json(record.to_bytes())
    assert again == record and again.pushing == NOW
    assert again.with_push(None).pushing is None and again.with_push(None) != record
    assert DeliveryRecord.from_json(b'{"pending": {}, "delivered_at": null}').pushing is None
    assert b"pushing" not in record.with_push(None).to_bytes()


def test_a_limited_distribution_records_only_what_it_showed():
    """oadrRequestEvent with replyLimit: events left out keep their entries as they were, so the
    next plan finds the VEN behind and sends the whole set; what was shown is recorded as usual."""
    a, b, c = event("a"), event("b", start=NOW + timedelta(hours=2)), event("c", start=NOW + timedelta(hours=3))
    before = plan_delivery([a], DeliveryRecord(), NOW).record
    plan = plan_delivery([a, b.model_copy(update={"modification_number": 1}), c], before, NOW)
    limited = shown_only(plan.record, before, {"a", "b"})
    assert limited.pending == {"a": (0, EventStatus.FAR), "b": (1, EventStatus.FAR)}
    following = plan_delivery([a, b.model_copy(update={"modification_number": 1}), c], limited, NOW)
    assert following.changed and [e for e, _, _ in shown(following)] == ["a", "b", "c"]
    assert not plan_delivery([a, b.model_copy(update={"modification_number": 1}), c], following.record, NOW).changed
    # An event held before and left out stays as the VEN last heard of it (here: at mod 0).
    held = plan_delivery([a, c], DeliveryRecord(), NOW).record
    moved = plan_delivery([a, c.model_copy(update={"modification_number": 1})], held, NOW)
    assert shown_only(moved.record, held, {"a"}).pending["c"] == (0, EventStatus.FAR)
