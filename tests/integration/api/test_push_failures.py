"""GraphQL pushFailures: what telemetry stored of failed pushes, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared.tables import PushFailureRow

from .helpers import gql

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)


async def test_push_failures_newest_first_and_per_ven(client, engine):
    async with AsyncSession(engine) as s:
        s.add_all([PushFailureRow(id=uuid.uuid4(), ven_id=ven, event_ids=["e1"], attempt=n, error="timeout",
                                  gave_up=n == 3, occurred_at=T0 + timedelta(minutes=n))
                   for ven, n in (("ven-a", 1), ("ven-a", 3), ("ven-b", 2))])
        await s.commit()
    query = "query($v: String) { pushFailures(venId: $v) { venId attempt error gaveUp eventIds occurredAt } }"
    everything = (await gql(client, query))["data"]["pushFailures"]
    assert [(f["venId"], f["attempt"]) for f in everything] == [("ven-a", 3), ("ven-b", 2), ("ven-a", 1)]
    only_a = (await gql(client, query, {"v": "ven-a"}))["data"]["pushFailures"]
    assert [(f["attempt"], f["gaveUp"]) for f in only_a] == [(3, True), (1, False)]
    assert only_a[0]["occurredAt"] == "2030-03-01T12:03:00+00:00" and only_a[0]["eventIds"] == ["e1"]
