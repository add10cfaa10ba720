"""Report requests an operator makes of a VEN, and the steps of every request (pure logic).

A request is checked against what the VEN registered (oadrRegisterReport): the report and its
rIDs must be among them, the granularity within the data points' sampling periods (R1_3010-3027)
and, for HISTORY_USAGE, granularity and reportBackDuration 0 with a reportInterval (R1_3130/3140).
Its steps: queued -> sent (oadrCreateReport on a poll) -> acknowledged (listed in the VEN's
pendingReports) -> cancelling (an operator cancelled it) -> cancelled (the VEN's
oadrCanceledReport), or failed (the VEN refused it). Each step is one compare-and-set of the
VEN's report record and then one ReportRequestChanged fact carrying the whole request.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from adrstack.shared.messages import (
    RequestReportCommand,
    ReportDescription,
    ReportRequestChanged,
    ReportRequestInfo,
    derived_id,
)

from .state import ReportRecord, ReportRequestState

HISTORY = "HISTORY_USAGE"
# Open operator requests per VEN: each is a job on the VEN and a row of its report record.
MAX_OPEN_REQUESTS = 50
ZERO = timedelta(0)


class Refused(Exception):
    """A request the VEN could not carry out as asked; ``field`` names the command's field."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def new_request_id() -> str:
    return "rr-" + secrets.token_hex(8)


def _whole(value: timedelta | None, field: str) -> timedelta | None:
    if value is not None and (value < ZERO or value.microseconds):
        raise Refused("invalid", "a 2.0b duration is a whole, non-negative number of seconds", field)
    return value


def _second(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(microsecond=0)


def _points(record: ReportRecord, command: RequestReportCommand) -> list[ReportDescription]:
    spec = command.report_specifier_id
    offered = record.reports.get(spec)
    if not offered:
        known = ", ".join(sorted(record.reports)[:10]) or "none"
        raise Refused("invalid", f"the VEN registered no report {spec[:80]!r} (registered: {known})",
                      "report_specifier_id")
    by_r_id = {d.r_id: d for d in offered}
    points = []
    for i, r_id in enumerate(command.r_ids):
        if r_id not in by_r_id:
            raise Refused("invalid", f"report {spec[:80]!r} has no rID {r_id[:80]!r}", f"r_ids[{i}]")
        if r_id in command.r_ids[:i]:
            raise Refused("invalid", f"rID {r_id[:80]!r} is asked for twice", f"r_ids[{i}]")
        points.append(by_r_id[r_id])
    return points


def new_request(command: RequestReportCommand, record: ReportRecord, now: datetime) -> ReportRequestState:
    """The request ``command`` asks for, checked against the VEN's registered reports; raises Refused."""
    open_requests = [r for r in record.requests if r.origin == "operator" and not r.finished]
    if len(open_requests) >= MAX_OPEN_REQUESTS:
        raise Refused("conflict", f"the VEN has {len(open_requests)} open report requests; cancel some first",
                      "ven_id")
    points = _points(record, command)
    name = points[0].report_name
    granularity = _whole(command.granularity, "granularity")
    back = _whole(command.report_back_duration, "report_back_duration")
    start, end = _second(command.start), _second(command.end)
    if end is not None and end <= (start or now):
        raise Refused("invalid", "end must be after start (and after now when there is no start)", "end")
    if name == HISTORY:
        # R1_3130/3140: a history request asks once for what was recorded over its interval.
        if granularity not in (None, ZERO):
            raise Refused("invalid", "a HISTORY_USAGE request has granularity 0 (leave it out)", "granularity")
        if back not in (None, ZERO):
            raise Refused("invalid", "a HISTORY_USAGE request has reportBackDuration 0 (leave it out)",
                          "report_back_duration")
        if start is None:
            raise Refused("invalid", "a HISTORY_USAGE request needs the start of the history wanted", "start")
        if end is None:
            raise Refused("invalid", "a HISTORY_USAGE request needs the end of the history wanted", "end")
        granularity = back = ZERO
    else:
        granularity = granularity or _default_granularity(points)
        slowest_minimum = max((d.min_sampling_period for d in points if d.min_sampling_period), default=None)
        fastest_maximum = min((d.max_sampling_period for d in points if d.max_sampling_period), default=None)
        if granularity <= ZERO:
            raise Refused("invalid", "granularity must be positive for a periodic report", "granularity")
        if slowest_minimum is not None and granularity < slowest_minimum:
            raise Refused("invalid", f"granularity must be at least the data points' minimum sampling period "
                                     f"({_seconds(slowest_minimum)})", "granularity")
        if fastest_maximum is not None and granularity > fastest_maximum:
            raise Refused("invalid", f"granularity must be at most the data points' maximum sampling period "
                                     f"({_seconds(fastest_maximum)})", "granularity")
        back = back or granularity
        if back < granularity:
            raise Refused("invalid", "reportBackDuration must be at least the granularity", "report_back_duration")
    interval_start = start or now.replace(microsecond=0)
    return ReportRequestState(
        report_request_id=new_request_id(),
        report_specifier_id=command.report_specifier_id,
        granularity=granularity,
        report_back_duration=back,
        r_ids=[(d.r_id, d.reading_type or "Direct Read") for d in points],
        created_at=now,
        origin="operator",
        interval_start=interval_start,
        # 2.0b: a reportInterval of duration 0 goes on until cancelled.
        interval_duration=(end - interval_start) if end is not None else ZERO,
    )


def _default_granularity(points: list[ReportDescription]) -> timedelta:
    """As often as every requested data point can sample."""
    slowest_minimum = max((d.min_sampling_period for d in points if d.min_sampling_period), default=None)
    return timedelta(seconds=max(1, round((slowest_minimum or timedelta(minutes=1)).total_seconds())))


def _seconds(d: timedelta) -> str:
    return f"{d.total_seconds():g} s"


# --------------------------------------------------------------------------- steps


def _step(r: ReportRequestState, **changes) -> ReportRequestState:
    return r.model_copy(update={**changes, "version": r.version + 1})


def cancel(r: ReportRequestState, report_to_follow: bool, now: datetime) -> ReportRequestState | None:
    """The operator cancels ``r`` (None: nothing changes, it is finished or being cancelled). One
    never delivered is cancelled at once: there is nothing to tell the VEN."""
    if r.finished or r.cancel_requested_at is not None:
        return None
    if not r.sent:
        return _step(r, cancel_requested_at=now, cancelled_at=now, report_to_follow=False)
    return _step(r, cancel_requested_at=now, report_to_follow=report_to_follow)


def cancel_sent(r: ReportRequestState, request_id: str, now: datetime, polled: bool) -> ReportRequestState:
    return _step(r, cancel_request_id=request_id, cancel_sent_at=r.cancel_sent_at or now,
                 cancel_polled_at=now if polled else r.cancel_polled_at)


def unsent(r: ReportRequestState) -> ReportRequestState | None:
    """Undo the send: the oadrCreateReport did not reach the VEN (a failed push)."""
    if r.acknowledged_at is not None:
        return None
    return _step(r, sent=False, sent_at=None, create_request_id=None)


def cancel_unsent(r: ReportRequestState) -> ReportRequestState:
    """Undo ``cancel_sent`` of a cancel that did not reach the VEN (a failed push)."""
    first = r.cancel_sent_at == r.cancel_polled_at  # this send was its first
    return _step(r, cancel_request_id=None, cancel_polled_at=None,
                 cancel_sent_at=None if first else r.cancel_sent_at)


def cancelled(r: ReportRequestState, now: datetime) -> ReportRequestState | None:
    return None if r.finished else _step(r, cancelled_at=now)


def failed(r: ReportRequestState, reason: str, now: datetime) -> ReportRequestState | None:
    return None if r.finished else _step(r, failed_at=now, failure=reason[:200])


def final_update(r: ReportRequestState, now: datetime) -> ReportRequestState:
    return _step(r, final_update_at=now)


def update_verdict(record: ReportRecord, report_request_id: str | None) -> str:
    """What to do with an oadrUpdateReport naming ``report_request_id``: "accept"; "final" (the one
    update a cancel with reportToFollow=true still allows, R1_3045); "refuse" (the request was
    cancelled). A reportRequestID that is none of ours is left to the other checks."""
    r = record.request(report_request_id) if report_request_id else None
    if r is None or r.cancelled_at is None:
        return "accept"
    if r.report_to_follow and r.final_update_at is None:
        return "final"
    return "refuse"


def cancels_to_send(record: ReportRecord, polled: bool) -> tuple[list[str], bool] | None:
    """(reportRequestIDs, reportToFollow) of the next oadrCancelReport, on a poll or piggybacked in
    oadrUpdatedReport: delivered requests only (R1_3050), those with the same reportToFollow
    together (the message has one flag)."""
    due = record.cancels_due() if polled else record.cancels_unsent()
    if not due:
        return None
    follow = due[0].report_to_follow
    return [r.report_request_id for r in due if r.report_to_follow == follow], follow


# --------------------------------------------------------------------------- facts


def info(r: ReportRequestState, record: ReportRecord) -> ReportRequestInfo:
    described = record.reports.get(r.report_specifier_id) or ()
    end = (r.interval_start + r.interval_duration
           if r.interval_start is not None and r.interval_duration else None)
    return ReportRequestInfo(
        report_request_id=r.report_request_id,
        report_specifier_id=r.report_specifier_id,
        report_name=described[0].report_name if described else None,
        r_ids=[r_id for r_id, _ in r.r_ids],
        granularity=r.granularity,
        report_back_duration=r.report_back_duration,
        interval_start=r.interval_start,
        interval_end=end,
        status=r.status,
        origin=r.origin,
        report_to_follow=r.report_to_follow,
        created_at=r.created_at,
        sent_at=r.sent_at,
        acknowledged_at=r.acknowledged_at,
        cancel_requested_at=r.cancel_requested_at,
        cancel_sent_at=r.cancel_sent_at,
        cancelled_at=r.cancelled_at,
        failed_at=r.failed_at,
        failure=r.failure,
        version=r.version,
    )


def fact(ven_id: str, r: ReportRequestState, record: ReportRecord) -> ReportRequestChanged:
    return ReportRequestChanged(id=derived_id("report.request", ven_id, r.report_request_id, r.version),
                                ven_id=ven_id, request=info(r, record))
