"""PushFailed facts are stored once each (redelivery cannot duplicate them) and read by GraphQL."""

from __future__ import annotations

from adrstack.shared.messages import PushFailed
from tests.helpers import eventually


async def test_push_failures_are_stored_once(harness):
    await harness.start_consumer()
    first = PushFailed(ven_id="ven-p", event_ids=["e1", "e2"], attempt=1, error="http_status", http_status=500)
    last = PushFailed(ven_id="ven-p", event_ids=["e1"], attempt=8, error="connection", gave_up=True)
    for fact in (first, last, first):  # the third is a redelivered copy
        await harness.publish(harness.subjects.push_failed("ven-p"), fact)

    async def stored():
        rows = await harness.rows("select attempt, error, http_status, gave_up, event_ids from push_failures "
                                  "order by attempt")
        return rows if len(rows) >= 2 else None
    rows = await eventually(stored, message="push failures stored")
    assert rows == [(1, "http_status", 500, False, ["e1", "e2"]), (8, "connection", None, True, ["e1"])]
