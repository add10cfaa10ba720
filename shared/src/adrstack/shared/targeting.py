"""Which VENs an event's targets name: the one resolution every delivery decision and every
creation check uses.

An event's targets are the union of its VEN ids, the current members of its groups and the VENs
that registered a report with one of its resource ids. Party ids and market contexts are not
resolved (market-context targeting needs programs).
"""

from __future__ import annotations

from typing import Iterable, Mapping

from .messages import EventTargets, ReportDescription


def resolve(targets: EventTargets, group_members: Mapping[str, Iterable[str]],
            vens_by_resource: Mapping[str, Iterable[str]]) -> set[str]:
    """The VEN ids ``targets`` name, given each group's members and each resource id's VENs (an
    unknown group or resource names nobody)."""
    vens = set(targets.ven_ids)
    for group_id in targets.group_ids:
        vens.update(group_members.get(group_id, ()))
    for resource_id in targets.resource_ids:
        vens.update(vens_by_resource.get(resource_id, ()))
    return vens


def resource_ids(reports: Mapping[str, Iterable[ReportDescription]]) -> frozenset[str]:
    """The resource ids of a VEN's registered report descriptions (by reportSpecifierID)."""
    return frozenset(d.resource_id for descriptions in reports.values() for d in descriptions if d.resource_id)
