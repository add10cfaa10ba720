"""The steps of a report request, and which updates and cancels they allow (pure logic)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.gateway import report_requests as rr
from adrstack.gateway.state import MAX_FINISHED_REQUESTS, ReportRecord, ReportRequestState, _without_oldest_finished

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def request(rid: str, **fields) -> ReportRequestState:
    return ReportRequestState(report_request_id=rid, report_specifier_id="s", granularity=timedelta(seconds=1),
                              report_back_duration=timedelta(seconds=1), r_ids=[("p", "Direct Read")], **fields)


def test_statuses_follow_the_steps():
    r = request("a")
    assert r.status == "queued"
    r = r.model_copy(update={"sent": True})
    assert r.status == "sent"
    r = r.model_copy(update={"acknowledged_at": NOW})
    assert r.status == "acknowledged"
    r = rr.cancel(r, True, NOW)
    assert r.status == "cancelling" and r.cancel_due and r.cancel_unsent and r.version == 1
    r = rr.cancel_sent(r, "req-1", NOW, polled=False)
    assert r.cancel_due and not r.cancel_unsent  # piggybacked: the poll still sends it
    r = rr.cancel_sent(r, "req-2", NOW + timedelta(seconds=1), polled=True)
    assert not r.cancel_due and r.cancel_sent_at == NOW
    r = rr.cancelled(r, NOW)
    assert r.status == "cancelled" and rr.cancelled(r, NOW) is None and rr.failed(r, "x", NOW) is None
    assert rr.cancel(r, False, NOW) is None


def test_a_cancel_before_sending_finishes_the_request_at_once():
    r = rr.cancel(request("a"), True, NOW)
    assert r.status == "cancelled" and not r.report_to_follow
    assert ReportRecord(requests=[r]).unsent() == []


def test_updates_after_a_cancel_allow_one_final_report_only_with_report_to_follow():
    follow = rr.cancelled(rr.cancel(request("f", sent=True), True, NOW), NOW)
    plain = rr.cancelled(rr.cancel(request("p", sent=True), False, NOW), NOW)
    record = ReportRecord(requests=[follow, plain, request("o", sent=True)])
    assert rr.update_verdict(record, "f") == "final"
    assert rr.update_verdict(record, "p") == "refuse"
    assert rr.update_verdict(record, "o") == "accept"
    assert rr.update_verdict(record, "someone-elses") == "accept"  # left to the other checks
    record = ReportRecord(requests=[rr.final_update(follow, NOW)])
    assert rr.update_verdict(record, "f") == "refuse"


def test_one_cancel_message_carries_the_delivered_requests_with_one_report_to_follow():
    record = ReportRecord(requests=[rr.cancel(request("a", sent=True), False, NOW),
                                    rr.cancel(request("b", sent=True), True, NOW),
                                    rr.cancel(request("c", sent=True), False, NOW),
                                    request("d", sent=True)])
    assert rr.cancels_to_send(record, polled=True) == (["a", "c"], False)
    assert rr.cancels_to_send(ReportRecord(requests=[request("e", sent=True)]), polled=True) is None


def test_only_the_newest_finished_requests_are_kept():
    finished = [rr.cancelled(request(f"x{i}"), NOW + timedelta(seconds=i)) for i in range(MAX_FINISHED_REQUESTS + 5)]
    kept = _without_oldest_finished([request("open"), *finished])
    assert [r.report_request_id for r in kept][0] == "open"
    assert len(kept) == MAX_FINISHED_REQUESTS + 1 and kept[1].report_request_id == "x5"
