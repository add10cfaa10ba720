"""API tokens and roles over HTTP, with ADRSTACK_API_AUTH on: each role against each kind of
operation, and what a missing, malformed, unknown, wrong or revoked token gets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adrstack.api.dashboard import dashboard_operation
from adrstack.shared.api_tokens import Role, create_token, parse_token, revoke_token

from .helpers import bearer

NOW = datetime.now(timezone.utc)
DASHBOARD_QUERY = {"query": dashboard_operation("snapshot"),
                   "variables": {"since": (NOW - timedelta(hours=1)).isoformat(), "until": NOW.isoformat()}}

# kind -> (how to call it, the least role that may)
OPERATIONS = {
    "query": ("graphql", "{ vens { venId } }", Role.VIEWER),
    "dashboard data": ("graphql", DASHBOARD_QUERY, Role.VIEWER),
    "event mutation": ("graphql", 'mutation { cancelEvent(eventId: "ev-none") { eventId } }', Role.OPERATOR),
    "provisioning query": ("graphql", "{ provisionedVens { venName } }", Role.ADMIN),
    "provisioning mutation": ("graphql", 'mutation { provisionVen(venName: "b-1", '
                                         'certFingerprint: "7A:1F:00:11:22:33:44:55:66:C3") { venName } }', Role.ADMIN),
    "token query": ("graphql", "{ apiTokens { id } }", Role.ADMIN),
    "token mutation": ("graphql", 'mutation { createApiToken(role: VIEWER, name: "x") { token } }', Role.ADMIN),
    "admin field in a fragment": ("graphql", "query { ...F } fragment F on Query { apiTokens { id } }", Role.ADMIN),
    "send_event": ("send_event", {"ven_id": "ven123", "event_id": "ev-se", "signal_level": 1}, Role.OPERATOR),
}


async def call(client, kind: str, token: str | None):
    route, payload, _ = OPERATIONS[kind]
    if route == "graphql":
        body = payload if isinstance(payload, dict) else {"query": payload}
        return await client.post("/graphql", json=body, headers=bearer(token))
    return await client.post("/send_event", json=payload, headers=bearer(token))


def assert_refusal(r, status: int, code: str) -> str:
    """The refusal in the shape of its endpoint; its message."""
    assert r.status_code == status, r.text
    body = r.json()
    if r.request.url.path == "/graphql":
        (error,) = body["errors"]
        assert error["extensions"]["code"] == code.upper(), body
        assert body.get("data") is None
        message = error["message"]
    else:
        assert set(body) == {"error", "message", "field"} and body["error"] == code, body
        message = body["message"]
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert message
    return message


@pytest.mark.parametrize("kind", OPERATIONS)
@pytest.mark.parametrize("role", list(Role))
async def test_each_role_against_each_kind_of_operation(secure_client, scheduler, tokens, kind, role):
    needed = OPERATIONS[kind][2]
    r = await call(secure_client, kind, tokens[role.value])
    if role.allows(needed):
        assert r.status_code == 200, r.text
        if r.request.url.path == "/graphql":
            codes = {e["extensions"]["code"] for e in r.json().get("errors", [])}
            assert not codes & {"FORBIDDEN", "UNAUTHENTICATED"}, r.text
    else:
        message = assert_refusal(r, 403, "forbidden")
        assert f"a {role.value} token may not" in message and needed.value in message
        assert scheduler.requests == []  # refused before anything was sent


@pytest.mark.parametrize("kind", ["query", "event mutation", "send_event"])
async def test_no_token_is_401(secure_client, scheduler, kind):
    assert_refusal(await call(secure_client, kind, None), 401, "unauthenticated")
    assert scheduler.requests == []


@pytest.mark.parametrize("credentials", [
    "adrs_000000000000_" + "A" * 43,  # well formed, unknown id
    "not-a-token",
    "",
])
async def test_a_bad_token_is_401(secure_client, credentials):
    r = await secure_client.post("/graphql", json={"query": "{ vens { venId } }"},
                                 headers={"Authorization": f"Bearer {credentials}"})
    assert_refusal(r, 401, "unauthenticated")
    r = await secure_client.post("/graphql", json={"query": "{ vens { venId } }"},
                                 headers={"Authorization": credentials})  # no Bearer scheme
    assert_refusal(r, 401, "unauthenticated")


async def test_the_right_id_with_a_wrong_secret_is_401(secure_client, tokens):
    token_id, secret = parse_token(tokens["admin"])
    wrong = f"adrs_{token_id}_{secret[:-1]}{'B' if secret[-1] != 'B' else 'C'}"
    assert_refusal(await secure_client.post("/graphql", json={"query": "{ vens { venId } }"}, headers=bearer(wrong)),
                   401, "unauthenticated")


async def test_a_revoked_token_is_401_at_once(secure_client, engine):
    issued = await create_token(engine, Role.ADMIN, "short-lived")
    ok = await secure_client.post("/graphql", json={"query": "{ vens { venId } }"}, headers=bearer(issued.token))
    assert ok.status_code == 200
    await revoke_token(engine, issued.row.id)
    assert_refusal(await secure_client.post("/graphql", json={"query": "{ vens { venId } }"},
                                            headers=bearer(issued.token)), 401, "unauthenticated")
    assert_refusal(await secure_client.post("/send_event", json=OPERATIONS["send_event"][1],
                                            headers=bearer(issued.token)), 401, "unauthenticated")


async def test_tokens_through_graphql_create_list_use_revoke(secure_client, tokens):
    admin = tokens["admin"]
    created = (await secure_client.post("/graphql", headers=bearer(admin), json={
        "query": 'mutation { createApiToken(role: OPERATOR, name: "ci") { token apiToken { id name role revokedAt } } }'
    })).json()["data"]["createApiToken"]
    token, row = created["token"], created["apiToken"]
    assert parse_token(token)[0] == row["id"] and (row["name"], row["role"], row["revokedAt"]) == ("ci", "OPERATOR", None)

    used = await secure_client.post("/graphql", json={"query": "{ events { eventId } }"}, headers=bearer(token))
    assert used.status_code == 200 and used.json() == {"data": {"events": []}}
    listed = (await secure_client.post("/graphql", headers=bearer(admin), json={
        "query": "{ apiTokens { id name role lastUsedAt revokedAt } }"})).json()["data"]["apiTokens"]
    mine = next(t for t in listed if t["id"] == row["id"])
    assert mine["lastUsedAt"] is not None and mine["revokedAt"] is None
    assert {t["name"] for t in listed} >= {"ci", "test viewer", "test operator", "test admin"}
    assert all("token" not in t for t in listed)

    revoked = (await secure_client.post("/graphql", headers=bearer(admin), json={
        "query": 'mutation($id: String!) { revokeApiToken(id: $id) { id revokedAt } }',
        "variables": {"id": row["id"]}})).json()["data"]["revokeApiToken"]
    assert revoked["id"] == row["id"] and revoked["revokedAt"] is not None
    assert_refusal(await secure_client.post("/graphql", json={"query": "{ events { eventId } }"}, headers=bearer(token)),
                   401, "unauthenticated")
    unknown = (await secure_client.post("/graphql", headers=bearer(admin), json={
        "query": 'mutation { revokeApiToken(id: "0123456789ab") { id } }'})).json()
    assert unknown["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "id"}
    malformed = (await secure_client.post("/graphql", headers=bearer(admin), json={
        "query": 'mutation($id: String!) { revokeApiToken(id: $id) { id } }', "variables": {"id": "a\u0000" * 50}})).json()
    assert malformed["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "id"}


async def test_a_bad_token_name_is_invalid(secure_client, tokens):
    data = (await secure_client.post("/graphql", headers=bearer(tokens["admin"]), json={
        "query": 'mutation { createApiToken(role: VIEWER, name: "  ") { token } }'})).json()
    assert data["errors"][0]["extensions"] == {"code": "INVALID", "field": "name"}


async def test_pages_without_data_stay_open(secure_client):
    assert (await secure_client.get("/health")).status_code == 200
    page = await secure_client.get("/")
    assert page.status_code == 200 and 'src="static/dashboard/dashboard.js"' in page.text
    script = await secure_client.get("/static/dashboard/dashboard.js")
    assert script.status_code == 200 and "sessionStorage" in script.text and "Authorization" in script.text
    # Only reading the static files is open: nothing else under /static/ is.
    assert (await secure_client.post("/static/dashboard/dashboard.js")).status_code == 401
    graphiql = await secure_client.get("/graphql", headers={"Accept": "text/html"})
    assert graphiql.status_code == 200 and "<html" in graphiql.text.lower()


async def test_get_operations_and_other_paths_need_a_token(secure_client, tokens):
    assert_refusal(await secure_client.get("/graphql", params={"query": "{ __typename }"}), 401, "unauthenticated")
    ok = await secure_client.get("/graphql", params={"query": "{ __typename }"}, headers=bearer(tokens["viewer"]))
    assert ok.status_code == 200 and ok.json() == {"data": {"__typename": "Query"}}
    # A route without a rule of its own is closed by default.
    assert (await secure_client.get("/openapi.json")).status_code == 401


async def test_with_tokens_off_everything_is_open(client, scheduler):
    r = await client.post("/graphql", json={"query": OPERATIONS["token query"][1]})
    assert r.status_code == 200 and r.json() == {"data": {"apiTokens": []}}
    r = await client.post("/send_event", json=OPERATIONS["send_event"][1])
    assert r.status_code == 200 and r.json()["event_id"] == "ev-se"
    assert len(scheduler.requests) == 1
