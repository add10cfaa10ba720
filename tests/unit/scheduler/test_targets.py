"""Targets other than VEN ids: carried from the command to the stored event."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from adrstack.scheduler.commands import CommandRejected, apply_modify, build_event, parse_command
from adrstack.shared.messages import CreateEventCommand, EventTargets, ModifyEventCommand

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def create(**body) -> bytes:
    return json.dumps({"intervals": [{"duration": "PT1H", "payload": 2.0}],
                       "start_at": (NOW + timedelta(hours=2)).isoformat(), **body}).encode()


def test_a_group_alone_is_a_target():
    event = build_event(parse_command(CreateEventCommand, create(group_ids=["north"])), "e1", NOW)
    assert event.targets == EventTargets(group_ids=["north"])


def test_every_target_kind_is_stored():
    cmd = parse_command(CreateEventCommand, create(ven_ids=["ven-1"], group_ids=["g"], resource_ids=["meter-1"]))
    event = build_event(cmd, "e1", NOW)
    assert event.targets == EventTargets(ven_ids=["ven-1"], group_ids=["g"], resource_ids=["meter-1"])


@pytest.mark.parametrize("body", [{}, {"ven_ids": []}, {"ven_ids": [], "group_ids": [], "resource_ids": []}])
def test_no_target_is_invalid_on_ven_ids(body):
    with pytest.raises(CommandRejected) as info:
        parse_command(CreateEventCommand, create(**body))
    assert info.value.code == "invalid" and info.value.field == "ven_ids"


def test_an_invalid_group_id_is_named():
    with pytest.raises(CommandRejected) as info:
        parse_command(CreateEventCommand, create(group_ids=["ok", "not ok"]))
    assert info.value.field == "group_ids"


def test_modify_replaces_only_the_kinds_given():
    event = build_event(parse_command(CreateEventCommand, create(ven_ids=["ven-1"], group_ids=["g"])), "e1", NOW)
    modified = apply_modify(event, ModifyEventCommand(event_id="e1", group_ids=["h"], resource_ids=["m"]), NOW)
    assert modified.targets == EventTargets(ven_ids=["ven-1"], group_ids=["h"], resource_ids=["m"])
    only_groups = apply_modify(modified, ModifyEventCommand(event_id="e1", ven_ids=[], resource_ids=[]), NOW)
    assert only_groups.targets == EventTargets(group_ids=["h"])


def test_modify_may_not_leave_no_target():
    event = build_event(parse_command(CreateEventCommand, create(group_ids=["g"])), "e1", NOW)
    with pytest.raises(CommandRejected) as info:
        apply_modify(event, ModifyEventCommand(event_id="e1", group_ids=[]), NOW)
    assert info.value.field == "ven_ids"
