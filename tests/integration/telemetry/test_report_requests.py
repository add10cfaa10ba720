"""ReportRequestChanged facts: one row per request, the newest version wins whatever the order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.shared.messages import ReportRequestChanged, ReportRequestInfo, derived_id
from tests.helpers import eventually

T0 = datetime(2030, 5, 1, 9, 0, tzinfo=timezone.utc)


def version(n: int, status: str, **times) -> ReportRequestChanged:
    info = ReportRequestInfo(report_request_id="rr-1", report_specifier_id="usage-1", report_name="TELEMETRY_USAGE",
                             r_ids=["power-1"], granularity=timedelta(seconds=10),
                             report_back_duration=timedelta(seconds=30), status=status, origin="operator",
                             created_at=T0, version=n, **times)
    return ReportRequestChanged(id=derived_id("report.request", "ven-r", "rr-1", n), ven_id="ven-r", request=info,
                                occurred_at=T0 + timedelta(seconds=n))


async def test_the_newest_version_of_a_request_wins_and_keeps_every_time(harness):
    sent = T0 + timedelta(seconds=1)
    acknowledged = T0 + timedelta(seconds=2)
    cancelled = T0 + timedelta(seconds=4)
    facts = [version(0, "queued"), version(3, "cancelled", sent_at=sent, acknowledged_at=acknowledged,
                                                  cancel_requested_at=T0 + timedelta(seconds=3),
                                                  cancelled_at=cancelled),
             version(1, "sent", sent_at=sent), version(2, "acknowledged", sent_at=sent, acknowledged_at=acknowledged)]
    for fact in facts + facts[:1]:  # out of order, and a redelivered copy
        await harness.publish(harness.subjects.report_request("ven-r"), fact)
    await harness.start_consumer()

    async def stored():
        rows = await harness.rows("select status, version, sent_at, acknowledged_at, cancelled_at, r_ids, "
                                  "granularity_seconds, report_back_duration_seconds from report_requests")
        return rows if rows and rows[0][1] == 3 else None

    [row] = await eventually(stored, message="the request's newest version stored")
    assert row == ("cancelled", 3, sent, acknowledged, cancelled, ["power-1"], 10.0, 30.0)
    # An older version arriving later changes nothing.
    await harness.publish(harness.subjects.report_request("ven-r"), version(2, "acknowledged", sent_at=sent))
    marker = version(0, "queued").model_copy(update={"ven_id": "ven-s", "id": derived_id("marker")})
    await harness.publish(harness.subjects.report_request("ven-s"), marker)
    await eventually(lambda: harness.rows("select 1 from report_requests where ven_id = 'ven-s'"),
                     message="a later fact stored")
    assert await harness.scalar("select status from report_requests where ven_id = 'ven-r'") == "cancelled"
