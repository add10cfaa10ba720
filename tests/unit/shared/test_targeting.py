"""The one targeting resolution, and the contracts that carry targets and groups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from adrstack.shared import kv_keys
from adrstack.shared.messages import (
    CreateEventCommand,
    EventInterval,
    EventTargets,
    GroupRecord,
    ModifyEventCommand,
    ReportDescription,
)
from adrstack.shared.subjects import InvalidIdError
from adrstack.shared.targeting import resolve, resource_ids

GROUPS = {"north": ["ven-a", "ven-b"], "south": ["ven-b", "ven-c"], "empty": []}
RESOURCES = {"meter-1": ["ven-d"], "shared-pv": ["ven-a", "ven-e"]}


@pytest.mark.parametrize("targets, expected", [
    (EventTargets(ven_ids=["ven-x"]), {"ven-x"}),
    (EventTargets(group_ids=["north"]), {"ven-a", "ven-b"}),
    (EventTargets(group_ids=["north", "south"]), {"ven-a", "ven-b", "ven-c"}),
    (EventTargets(resource_ids=["meter-1"]), {"ven-d"}),
    (EventTargets(resource_ids=["shared-pv"]), {"ven-a", "ven-e"}),
    (EventTargets(ven_ids=["ven-x"], group_ids=["south"], resource_ids=["meter-1"]),
     {"ven-x", "ven-b", "ven-c", "ven-d"}),
    (EventTargets(group_ids=["empty"]), set()),
    (EventTargets(group_ids=["no-such-group"], resource_ids=["no-such-resource"]), set()),
    (EventTargets(), set()),
])
def test_resolve_is_the_union_of_every_target_kind(targets, expected):
    assert resolve(targets, GROUPS, RESOURCES) == expected


def test_resolve_ignores_party_ids():
    # Party ids are rendered in the eiTarget but name no VEN of ours.
    assert resolve(EventTargets(party_ids=["party-1"]), GROUPS, RESOURCES) == set()


def test_resource_ids_of_a_vens_reports():
    def point(r_id, resource_id):
        return ReportDescription(report_specifier_id="s", report_name="METADATA_TELEMETRY_USAGE", r_id=r_id,
                                 resource_id=resource_id)

    reports = {"s1": [point("r1", "meter-1"), point("r2", None)], "s2": [point("r3", "pv"), point("r4", "meter-1")]}
    assert resource_ids(reports) == {"meter-1", "pv"}
    assert resource_ids({}) == frozenset()


ONE = [EventInterval(duration=timedelta(hours=1), payload=1)]


def test_create_command_takes_groups_or_resources_alone():
    assert CreateEventCommand(group_ids=["north"], intervals=ONE).targets == EventTargets(group_ids=["north"])
    assert CreateEventCommand(resource_ids=["m"], intervals=ONE).targets == EventTargets(resource_ids=["m"])
    # An older api's command (ven_ids only) still reads.
    old = CreateEventCommand.model_validate_json(b'{"ven_ids": ["ven-a"], "intervals": [{"duration": "PT1H", '
                                                 b'"payload": 1}]}')
    assert old.targets == EventTargets(ven_ids=["ven-a"])


def test_create_command_needs_some_target():
    with pytest.raises(ValidationError, match="at least one target"):
        CreateEventCommand(intervals=ONE)
    with pytest.raises(ValidationError, match="at least one target"):
        CreateEventCommand(ven_ids=[], group_ids=[], intervals=ONE)


def test_group_ids_in_commands_are_tokens():
    with pytest.raises(ValidationError, match="group_id"):
        CreateEventCommand(group_ids=["bad group"], intervals=ONE)
    with pytest.raises(ValidationError, match="group_id"):
        ModifyEventCommand(event_id="e1", group_ids=["a.b"])
    assert ModifyEventCommand(event_id="e1").group_ids is None


def test_group_record_and_key():
    record = GroupRecord(group_id="north-1", name="North feeder", ven_ids=["ven-a"])
    assert GroupRecord.model_validate_json(record.to_bytes()) == record
    assert kv_keys.group_key("north-1") == "group.north-1"
    with pytest.raises(ValidationError):
        GroupRecord(group_id="north.1")
    with pytest.raises(InvalidIdError):
        kv_keys.group_key("north>")


def test_market_contexts_resolve_through_programs():
    from types import SimpleNamespace

    peak = SimpleNamespace(ven_ids=["ven-x"], group_ids=["south"])
    other = SimpleNamespace(ven_ids=["ven-y"], group_ids=[])
    programs = {"http://mc/peak": [peak], "http://mc/other": [other]}
    targets = EventTargets(market_contexts=["http://mc/peak"])
    assert resolve(targets, GROUPS, RESOURCES, programs) == {"ven-x", "ven-b", "ven-c"}
    assert resolve(EventTargets(market_contexts=["http://mc/none"]), GROUPS, RESOURCES, programs) == set()
    assert resolve(targets, GROUPS, RESOURCES) == set()  # without programs, a market context names nobody
    both = EventTargets(ven_ids=["ven-z"], market_contexts=["http://mc/peak", "http://mc/other"])
    assert resolve(both, GROUPS, RESOURCES, programs) == {"ven-x", "ven-y", "ven-z", "ven-b", "ven-c"}
