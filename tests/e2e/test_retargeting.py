"""Retargeting, the all-events rule and cancel, through the running stack, as two real openleadr
VENs see them: a modification that drops a VEN is an implied cancel, so that VEN is sent the
events it still has (rule 50, A_E3_0440) and, once none is left, an empty oadrDistributeEvent
(E1_1010); the VEN it moved to gets it with the next modification number (E1_1030); a cancel
reaches the VEN that holds the event."""

from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_spine import gql, start_ven, ven_name
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

CREATE = """mutation($input: CreateEventInput!) { createEvent(input: $input) { eventId } }"""
MODIFY = """mutation($input: ModifyEventInput!) { modifyEvent(input: $input) { modificationNumber targets { venIds } } }"""
CANCEL = """mutation($id: String!) { cancelEvent(eventId: $id) { status modificationNumber } }"""


async def recording_ven(stack, tag: str):
    """A running VEN and every oadrDistributeEvent it got, as a list of {event_id: (mod, status)}."""
    client, _ = await start_ven(stack, ven_name(tag))
    distributions: list[dict[str, tuple[int, str]]] = []
    poll = client.poll

    # At the poll, not in the event handler: openleadr does not pass an empty one on.
    async def recording_poll():
        response_type, payload = await poll()
        if response_type == "oadrDistributeEvent":
            distributions.append({e["event_descriptor"]["event_id"]: (e["event_descriptor"]["modification_number"],
                                                                      e["event_descriptor"]["event_status"])
                                  for e in copy.deepcopy(payload.get("events") or [])})
        return response_type, payload

    client.poll = recording_poll
    return client, distributions


async def test_retargeting_sends_the_remaining_set_then_an_empty_one_and_the_new_ven_gets_it(stack):
    a, seen_a = await recording_ven(stack, "retarget-a")
    b, seen_b = await recording_ven(stack, "retarget-b")
    try:
        tag = random.randrange(10**9)
        moving, staying = f"move-{tag}", f"stay-{tag}"
        start = (datetime.now(timezone.utc) + timedelta(hours=2)).replace(microsecond=0).isoformat()
        for event_id in (moving, staying):
            created = await gql(stack, CREATE, {"input": {
                "venIds": [a.ven_id], "eventId": event_id, "startAt": start,
                "intervals": [{"duration": "PT1H", "payload": 2}]}})
            assert "errors" not in created, created
        await eventually(lambda: any(set(d) == {moving, staying} for d in seen_a), 30,
                         message="A holds both events")

        modified = await gql(stack, MODIFY, {"input": {"eventId": moving, "venIds": [b.ven_id]}})
        assert modified["data"]["modifyEvent"] == {"modificationNumber": 1, "targets": {"venIds": [b.ven_id]}}
        # A is sent the whole remaining set: the event it keeps, without the one that left.
        await eventually(lambda: seen_a and set(seen_a[-1]) == {staying}, 30, message="A told what it has left")
        assert seen_a[-1][staying] == (0, "far")
        # B gets the moved event at its new modification number, and only that.
        await eventually(lambda: any(moving in d for d in seen_b), 30, message="B got the moved event")
        assert next(d for d in seen_b if moving in d) == {moving: (1, "far")}

        cancelled = await gql(stack, CANCEL, {"id": staying})
        assert cancelled["data"]["cancelEvent"] == {"status": "cancelled", "modificationNumber": 1}
        await eventually(lambda: seen_a and seen_a[-1].get(staying) == (1, "cancelled"), 30,
                         message="A told of the cancellation")

        # Retargeting B's only event away leaves B with nothing: it is told so, with an empty one.
        moved_back = await gql(stack, MODIFY, {"input": {"eventId": moving, "venIds": [a.ven_id]}})
        assert moved_back["data"]["modifyEvent"]["modificationNumber"] == 2
        await eventually(lambda: seen_b and seen_b[-1] == {}, 30, message="B sent an empty distribution")
        await eventually(lambda: seen_a and seen_a[-1].get(moving) == (2, "far"), 30, message="A has it back")
        assert staying not in seen_a[-1] or seen_a[-1][staying][1] == "cancelled"
    finally:
        await a.stop()
        await b.stop()
