"""The event book's VEN -> events index follows groups and VENs' resources as well as events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adrstack.gateway.events import EventBook
from adrstack.gateway.state import ReportRecord
from adrstack.shared.kv_mirror import KvMirror
from adrstack.shared.messages import (
    DrEvent,
    EventInterval,
    EventStatus,
    EventTargets,
    GroupRecord,
    ReportDescription,
)

START = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


class _NoKv:
    _name = "test"


def event(event_id: str, **targets) -> DrEvent:
    return DrEvent(event_id=event_id, status=EventStatus.FAR, start_at=START,
                   intervals=[EventInterval(duration=timedelta(hours=1), payload=1)],
                   targets=EventTargets(**targets))


def reports(*resource_ids: str) -> ReportRecord:
    return ReportRecord(reports={"spec": [
        ReportDescription(report_specifier_id="spec", report_name="METADATA_TELEMETRY_USAGE", r_id=f"r{i}",
                          resource_id=r) for i, r in enumerate(resource_ids)]})


def book() -> tuple[EventBook, KvMirror]:
    b = EventBook(_NoKv(), _NoKv())
    report_mirror: KvMirror = KvMirror(_NoKv(), "reports.", lambda raw: None, on_change=b.reports_changed)
    b.follow_reports(report_mirror)
    return b, report_mirror


def ids(b: EventBook, ven: str) -> list[str]:
    return sorted(e.event_id for e in b.for_ven(ven))


def test_group_members_get_the_event_and_follow_membership():
    b, _ = book()
    b.groups.noted("north", GroupRecord(group_id="north", ven_ids=["ven-a", "ven-b"]), 1)
    b.mirror.noted("e1", event("e1", group_ids=["north"]), 1)
    b.mirror.noted("e2", event("e2", ven_ids=["ven-c"], group_ids=["south"]), 2)
    assert ids(b, "ven-a") == ["e1"] and ids(b, "ven-b") == ["e1"] and ids(b, "ven-c") == ["e2"]
    assert b.targets(b.get("e1"), "ven-a") and not b.targets(b.get("e1"), "ven-c")
    # Membership changes move the current event.
    b.groups.noted("north", GroupRecord(group_id="north", ven_ids=["ven-b", "ven-c"]), 2)
    assert ids(b, "ven-a") == [] and ids(b, "ven-c") == ["e1", "e2"]
    b.groups.noted("south", GroupRecord(group_id="south", ven_ids=["ven-a"]), 3)
    assert ids(b, "ven-a") == ["e2"]
    b.groups.noted("north", None, 4)  # the group deleted: nobody is targeted through it
    assert ids(b, "ven-b") == [] and ids(b, "ven-c") == ["e2"]


def test_an_untargeted_groups_change_leaves_the_index_clean():
    b, _ = book()
    b.mirror.noted("e1", event("e1", group_ids=["north"]), 1)
    assert ids(b, "ven-a") == []
    b.groups.noted("other", GroupRecord(group_id="other", ven_ids=["ven-a"]), 1)
    assert not b._dirty
    b.groups.noted("north", GroupRecord(group_id="north", ven_ids=["ven-a"]), 2)
    assert b._dirty and ids(b, "ven-a") == ["e1"] and not b._dirty


def test_event_changes_are_applied_against_the_current_groups():
    b, _ = book()
    b.groups.noted("g", GroupRecord(group_id="g", ven_ids=["ven-a"]), 1)
    b.mirror.noted("e1", event("e1", group_ids=["g"]), 1)
    assert ids(b, "ven-a") == ["e1"]
    b.mirror.noted("e1", event("e1", ven_ids=["ven-z"]), 2)  # retargeted away from the group
    assert ids(b, "ven-a") == [] and ids(b, "ven-z") == ["e1"]
    b.groups.noted("g", GroupRecord(group_id="g", ven_ids=["ven-b"]), 2)
    assert not b._dirty  # no event targets g any more
    b.mirror.noted("e1", None, 3)
    assert ids(b, "ven-z") == []


def test_resource_ids_resolve_to_the_vens_that_registered_them():
    b, reports_mirror = book()
    reports_mirror.noted("ven-a", reports("meter-1", "pv-1"), 1)
    reports_mirror.noted("ven-b", reports("meter-2"), 2)
    b.mirror.noted("e1", event("e1", resource_ids=["meter-2"]), 1)
    assert ids(b, "ven-b") == ["e1"] and ids(b, "ven-a") == []
    # The VEN registers its reports again with the resource: it gets the current event.
    reports_mirror.noted("ven-a", reports("meter-1", "meter-2"), 3)
    assert ids(b, "ven-a") == ["e1"]
    reports_mirror.noted("ven-b", None, 4)  # deregistered: its reports are gone
    assert ids(b, "ven-b") == [] and ids(b, "ven-a") == ["e1"]
    # A change that does not touch resource ids (e.g. a report request marked sent) costs nothing.
    assert not b._dirty
    same = reports("meter-1", "meter-2")
    reports_mirror.noted("ven-a", same, 5)
    assert not b._dirty


def test_a_reload_rebuilds_everything():
    b, reports_mirror = book()
    reports_mirror.noted("ven-a", reports("m"), 1)
    b.groups.noted("g", GroupRecord(group_id="g", ven_ids=["ven-b"]), 1)
    b.mirror.noted("e1", event("e1", resource_ids=["m"], group_ids=["g"], ven_ids=["ven-c"]), 1)
    b._changed(None, None, None)
    b.reports_changed(None, None, None)
    assert b._dirty
    assert ids(b, "ven-a") == ids(b, "ven-b") == ids(b, "ven-c") == ["e1"]
