"""Ids given to queries are checked before they reach Postgres: a NUL or other junk is a clear
INVALID error naming the argument, not a database error echoing the SQL."""

from __future__ import annotations

import pytest

from .helpers import gql


@pytest.mark.parametrize("query, field", [
    ("query($id: String!) { ven(venId: $id) { venId } }", "venId"),
    ("query($id: String!) { event(eventId: $id) { eventId } }", "eventId"),
    ("query($id: String!) { readings(venId: $id) { value } }", "venId"),
])
@pytest.mark.parametrize("bad_id", ["ven\x00x", "x' OR 1=1 --", "vén", ""])
async def test_ids_that_cannot_exist_are_invalid_input(client, query, field, bad_id):
    data = await gql(client, query, {"id": bad_id})
    (error,) = data["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": field}, error
    assert error["message"].startswith(f"{field}: ")
    assert "SQL" not in error["message"] and "psycopg" not in error["message"]
