"""Which VENs an event's targets name: the one resolution every delivery decision and every
creation check uses.

An event's targets are the union of its VEN ids, the current members of its groups and the VENs
that registered a report with one of its resource ids. Party ids and market contexts are not
resolved. A market context names the VENs and the members of the groups enrolled in the programs
with that market context (as they are at each resolution).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Protocol

from .messages import EventTargets, ReportDescription


class Enrollment(Protocol):
    """What a program enrolls (a ProgramRecord is one)."""

    ven_ids: list[str]
    group_ids: list[str]


def resolve(targets: EventTargets, group_members: Mapping[str, Iterable[str]],
            vens_by_resource: Mapping[str, Iterable[str]],
            programs_by_market_context: Mapping[str, Iterable[Enrollment]] | None = None) -> set[str]:
    """The VEN ids ``targets`` name, given each group's members, each resource id's VENs and the
    programs of each market context (an unknown group, resource or market context names nobody)."""
    vens = set(targets.ven_ids)
    groups = list(targets.group_ids)
    for market_context in targets.market_contexts:
        for program in (programs_by_market_context or {}).get(market_context, ()):
            vens.update(program.ven_ids)
            groups.extend(program.group_ids)
    for group_id in groups:
        vens.update(group_members.get(group_id, ()))
    for resource_id in targets.resource_ids:
        vens.update(vens_by_resource.get(resource_id, ()))
    return vens


def resource_ids(reports: Mapping[str, Iterable[ReportDescription]]) -> frozenset[str]:
    """The resource ids of a VEN's registered report descriptions (by reportSpecifierID)."""
    return frozenset(d.resource_id for descriptions in reports.values() for d in descriptions if d.resource_id)
