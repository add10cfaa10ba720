"""POST /graphql bodies that are not a GraphQL operation get a 400, never a 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("body", [b'"a string"', b"null", b"42", b"true", b'{"query": "\xff\xfe"}', b"\xff"])
async def test_json_that_is_not_an_operation_is_a_400(client, body):
    response = await client.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    ok = await client.post("/graphql", json={"query": "{ __typename }"})
    assert ok.status_code == 200 and ok.json() == {"data": {"__typename": "Query"}}
