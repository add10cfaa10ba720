"""TELEMETRY_STATUS facts: every point in the history once, and the newest per VEN and resource
as its latest status, whatever the order and however often they arrive."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from adrstack.shared.messages import LoadControl, LoadControlValue, ReportStatus, ResourceStatus
from tests.helpers import eventually

T0 = datetime.now(timezone.utc).replace(microsecond=0)


def status(at: datetime, online: bool, resource_id: str | None = "pump-1", r_id: str = "s1",
           current: float = 1.0, msg_id=None) -> ReportStatus:
    extra = {"id": msg_id} if msg_id else {}
    return ReportStatus(ven_id="ven-1", report_specifier_id="status-1", report_request_id="rr-1", statuses=[
        ResourceStatus(r_id=r_id, at=at, online=online, manual_override=not online, resource_id=resource_id,
                       load_control=LoadControl(set_point=LoadControlValue(current=current, normal=20.0)))], **extra)


async def test_statuses_are_kept_once_and_the_newest_is_the_latest(harness):
    subject = harness.subjects.report_status("ven-1")
    await harness.start_consumer()
    newest = status(T0 + timedelta(minutes=2), online=False, current=18.0)
    await harness.publish(subject, status(T0, online=True))
    await harness.publish(subject, newest)
    # Late and re-sent copies, under other message ids so the stream keeps them: the table decides.
    await harness.publish(subject, status(T0 + timedelta(minutes=1), online=True))
    await harness.publish(subject, status(T0, online=True, msg_id=uuid.uuid4()))
    # Another resource, and a point of the VEN as a whole (no resource named).
    await harness.publish(subject, status(T0, online=True, resource_id="pump-2", r_id="s2"))
    await harness.publish(subject, status(T0, online=True, resource_id=None, r_id="s3"))

    await eventually(lambda: harness.scalar("select count(*) = 5 from ven_status"), 15, message="5 history rows")
    latest = await eventually(lambda: harness.rows(
        "select resource_key, resource_id, at, online, manual_override, load_control from ven_status_latest "
        "where ven_id = 'ven-1' order by resource_key"), message="latest rows")
    assert latest == [
        ("", None, T0, True, False, {"set_point": {"current": 1.0, "normal": 20.0}}),
        ("pump-1", "pump-1", T0 + timedelta(minutes=2), False, True, {"set_point": {"current": 18.0, "normal": 20.0}}),
        ("pump-2", "pump-2", T0, True, False, {"set_point": {"current": 1.0, "normal": 20.0}}),
    ]
    history = await harness.rows("select at, online from ven_status where resource_id = 'pump-1' order by at")
    assert history == [(T0, True), (T0 + timedelta(minutes=1), True), (T0 + timedelta(minutes=2), False)]
