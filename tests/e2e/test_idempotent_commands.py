"""A client retrying a command with its idempotency key — through GraphQL and /send_event, against
the real scheduler — gets the first result and nothing is created or cancelled twice."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.test_spine import CREATE, event_keys, start_ven, ven_name

pytestmark = pytest.mark.e2e


async def test_retried_mutations_apply_once(stack):
    client, _ = await start_ven(stack, ven_name("idem"))
    try:
        before = await event_keys(stack)
        create = {"venIds": [client.ven_id], "intervals": [{"duration": "PT1H", "payload": 1}],
                  "idempotencyKey": f"create-{client.ven_id}"}
        first = stack.graphql(CREATE, {"input": create})["data"]["createEvent"]
        again = stack.graphql(CREATE, {"input": create})["data"]["createEvent"]
        assert again["eventId"] == first["eventId"]
        assert await event_keys(stack) - before == {f"event.{first['eventId']}"}

        reused = stack.graphql(CREATE, {"input": {**create, "intervals": [{"duration": "PT2H", "payload": 1}]}})
        assert reused["errors"][0]["extensions"]["code"] == "CONFLICT"

        cancel = """mutation($id: String!, $key: String) { cancelEvent(eventId: $id, idempotencyKey: $key) {
                      status modificationNumber } }"""
        variables = {"id": first["eventId"], "key": f"cancel-{client.ven_id}"}
        cancelled = stack.graphql(cancel, variables)["data"]["cancelEvent"]
        # Without a key a second cancel would be refused (already cancelled); with it, the same answer.
        assert stack.graphql(cancel, variables)["data"]["cancelEvent"] == cancelled == {
            "status": "cancelled", "modificationNumber": cancelled["modificationNumber"]}

        url = f"{stack.api_url}/send_event"
        headers = {"Idempotency-Key": f"send-{client.ven_id}"}
        async with httpx.AsyncClient(timeout=15) as http:
            sent = [await http.post(url, json={"ven_id": client.ven_id, "signal_level": 2}, headers=headers)
                    for _ in range(2)]
        assert [r.status_code for r in sent] == [200, 200]
        assert sent[0].json()["event_id"] == sent[1].json()["event_id"]
        assert len(await event_keys(stack) - before) == 2
    finally:
        await client.stop()
