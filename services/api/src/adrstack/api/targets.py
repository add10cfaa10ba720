"""Checking an event's targets before it is created or retargeted: every group must exist and
have members, every resource id must be one a registered VEN declared in its reports, and the
VENs they resolve to (shared.targeting.resolve, the gateway's own resolution) must not be none.
Listed VEN ids are checked by the scheduler against the VEN registry (UNKNOWN_VEN)."""

from __future__ import annotations

from dataclasses import dataclass

from adrstack.shared.messages import EventTargets
from adrstack.shared.targeting import resolve

from .errors import InvalidInput
from .state import ApiState
from .validation import shown

# Programs are few (a utility runs tens); the check reads them all.
MAX_PROGRAMS_SCANNED = 10_000


@dataclass(frozen=True)
class TargetFields:
    """How the caller spells the target fields."""

    ven_ids: str = "venIds"
    group_ids: str = "groupIds"
    resource_ids: str = "resourceIds"
    market_contexts: str = "marketContexts"


GRAPHQL = TargetFields()
REST = TargetFields("ven_id", "group_ids", "resource_ids", "market_contexts")


async def check_targets(state: ApiState, ven_ids: list[str] | None, group_ids: list[str] | None,
                        resource_ids: list[str] | None, fields: TargetFields = GRAPHQL,
                        market_contexts: list[str] | None = None) -> set[str]:
    """The VENs the targets resolve to now; INVALID naming the target that matches no VEN."""
    groups = list(group_ids or [])
    resources = list(resource_ids or [])
    contexts = list(market_contexts or [])
    programs: dict[str, list] = {}
    if contexts:
        for record in await state.programs.records(MAX_PROGRAMS_SCANNED):
            programs.setdefault(record.market_context, []).append(record)
        for i, market_context in enumerate(contexts):
            enrolled = programs.get(market_context, [])
            if not any(p.ven_ids or p.group_ids for p in enrolled):
                raise InvalidInput(f"{fields.market_contexts}[{i}]",
                                   f"no program with the market context {shown(market_context)} enrolls a VEN")
            groups_of_programs = [g for p in enrolled for g in p.group_ids]
            groups += [g for g in groups_of_programs if g not in groups]
    members = await state.groups.members(groups) if groups else {}
    for i, group_id in enumerate(list(group_ids or [])):
        if group_id not in members:
            raise InvalidInput(f"{fields.group_ids}[{i}]", f"no group {shown(group_id)}")
        if not members[group_id]:
            raise InvalidInput(f"{fields.group_ids}[{i}]", f"the group {shown(group_id)} has no VENs")
    by_resource = await state.store.vens_by_resource(resources) if resources else {}
    for i, resource_id in enumerate(resources):
        if not by_resource.get(resource_id):
            raise InvalidInput(f"{fields.resource_ids}[{i}]",
                               f"no registered VEN has declared a report on the resource {shown(resource_id)}")
    targets = EventTargets(ven_ids=list(ven_ids or []), group_ids=list(group_ids or []), resource_ids=resources,
                           market_contexts=contexts)
    resolved = resolve(targets, members, by_resource, programs)
    if not resolved and (groups or resources or contexts or ven_ids is not None):
        field = (fields.group_ids if group_ids else fields.resource_ids if resources
                 else fields.market_contexts if contexts else fields.ven_ids)
        raise InvalidInput(field, "the targets match no VEN")
    return resolved


async def targeted_vens(state: ApiState, targets: EventTargets) -> set[str]:
    """The VENs an event's targets name now (the gateway's resolution; nothing is checked)."""
    programs: dict[str, list] = {}
    groups = list(targets.group_ids)
    if targets.market_contexts:
        for record in await state.programs.records(MAX_PROGRAMS_SCANNED):
            programs.setdefault(record.market_context, []).append(record)
            if record.market_context in targets.market_contexts:
                groups += [g for g in record.group_ids if g not in groups]
    members = await state.groups.members(groups) if groups else {}
    resources = list(targets.resource_ids)
    by_resource = await state.store.vens_by_resource(resources) if resources else {}
    return resolve(targets, members, by_resource, programs)
