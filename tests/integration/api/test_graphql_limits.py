"""GraphQL limits: tokens, depth, aliases, the body cap, list caps; production mode turns off
introspection, GraphiQL, GET operations and suggestions. A refused operation leaves the API
answering as before."""

from __future__ import annotations

import httpx
import pytest

from adrstack.api.app import create_app
from adrstack.api.settings import ApiSettings

from .helpers import gql


@pytest.fixture
def limited_settings(api_settings) -> ApiSettings:
    return api_settings.model_copy(update={"graphql_max_depth": 2, "graphql_max_aliases": 4,
                                           "graphql_max_tokens": 200, "graphql_max_body_bytes": 4096})


@pytest.fixture
async def limited(limited_settings):
    app = create_app(limited_settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            yield c


def too_complex(data: dict) -> str:
    assert data["data"] is None, data
    (error,) = [e for e in data["errors"] if e["extensions"]["code"] == "TOO_COMPLEX"]
    return error["message"]


async def still_answers(client) -> None:
    assert (await gql(client, "{ vens { venId } }")) == {"data": {"vens": []}}


async def test_depth(limited):
    # vens(1) > venId(2): 2 deep is allowed ...
    assert "errors" not in await gql(limited, "{ vens { venId } }")
    # ... 3 deep is not.
    data = await gql(limited, "{ events { intervals { duration } } }")
    assert "nests fields 3 deep; at most 2" in too_complex(data)
    # Fragments count where they are spread.
    data = await gql(limited, "{ ...Q } fragment Q on Query { events { ...E } } fragment E on Event { targets { venIds } }")
    assert "3 deep" in too_complex(data)
    await still_answers(limited)


async def test_aliases_counted_through_fragments(limited):
    assert "errors" not in await gql(limited, "{ a: vens { venId } b: vens { venId } c: vens { venId } d: vens { venId } }")
    data = await gql(limited, "{ a: vens { venId } b: vens { venId } c: vens { venId } d: vens { venId } "
                              "e: vens { venId } }")
    assert "5 aliased fields; at most 4" in too_complex(data)
    # One alias in a fragment spread five times is five aliases.
    data = await gql(limited, "{ ...F ...G } fragment F on Query { ...H ...H ...H } fragment G on Query { ...H ...H } "
                              "fragment H on Query { a: vens { venId } }")
    assert "5 aliased fields" in too_complex(data)


async def test_tokens(limited):
    data = await gql(limited, "{ " + "vens { venId } " * 60 + "}")  # 240 tokens
    assert "more than 200 tokens" in too_complex(data)
    await still_answers(limited)


async def test_body_cap_of_graphql_and_the_general_one(limited, scheduler):
    r = await limited.post("/graphql", json={"query": "{ vens { venId } }", "variables": {"pad": "x" * 5000}})
    assert r.status_code == 413
    assert r.json()["errors"][0]["extensions"]["code"] == "TOO_LARGE"
    # /send_event keeps the general cap (1 MiB).
    r = await limited.post("/send_event", json={"ven_id": "ven123", "signal_level": 1, "pad": "x" * 5000})
    assert r.status_code == 200, r.text
    await still_answers(limited)


@pytest.mark.parametrize("query, field", [
    ("{ vens(limit: 10001) { venId } }", "limit"),
    ("{ events(limit: 1001) { eventId } }", "limit"),
    ('{ readings(venId: "v", limit: 10001) { value } }', "limit"),
    ("{ provisionedVens(limit: 10001) { venName } }", "limit"),
    ("{ apiTokens(limit: 1001) { id } }", "limit"),
    ("{ vens(limit: 0) { venId } }", "limit"),
])
async def test_list_caps_refuse_more(client, query, field):
    data = await gql(client, query)
    (error,) = data["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": field}, data
    assert data["data"] is None


async def test_list_caps_allow_up_to_the_cap(client):
    for query in ("{ vens(limit: 10000) { venId } }", "{ events(limit: 1000) { eventId } }",
                  '{ readings(since: "2030-01-01T00:00:00Z", until: "2030-01-01T12:00:00Z", limit: 10000) { value } }', "{ apiTokens(limit: 1000) { id } }",
                  "{ provisionedVens(limit: 10000) { venName } }"):
        assert "errors" not in await gql(client, query), query


async def test_the_900_kb_query_of_48000_aliases_is_refused_and_the_api_keeps_answering(client):
    query = "{" + "".join(f"a{i}:vens{{venId}}" for i in range(48_000)) + "}"
    assert 800_000 < len(query) < 1_000_000  # under the default body cap: the token limit must refuse it
    data = await gql(client, query)
    assert "more than 2000 tokens" in too_complex(data)
    await still_answers(client)


async def test_pathological_documents_are_refused(client):
    same_field = await gql(client, "{ vens { " + "venId " * 1500 + "} }")
    assert too_complex(same_field)
    r = await client.post("/graphql", content=b'{"query": ' + b"[" * 100_000 + b"}",
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    await still_answers(client)


@pytest.fixture
async def production(api_settings):
    app = create_app(api_settings.model_copy(update={"api_production": True}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            yield c


async def test_production_turns_off_introspection_graphiql_get_and_suggestions(production):
    introspection = await gql(production, "{ __schema { types { name } } }")
    assert introspection["data"] is None and "introspection has been disabled" in introspection["errors"][0]["message"]
    assert (await gql(production, "{ __typename }")) == {"data": {"__typename": "Query"}}

    graphiql = await production.get("/graphql", headers={"Accept": "text/html"})
    assert graphiql.status_code == 405 and "html" not in graphiql.headers["content-type"]
    get = await production.get("/graphql", params={"query": "{ __typename }"})
    assert get.status_code == 405 and get.headers["allow"] == "POST"
    assert get.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert (await production.get("/openapi.json")).status_code == 404

    for query in ("{ venz { venId } }", '{ readings(venId: "v", lmit: 3) { value } }'):
        message = (await gql(production, query))["errors"][0]["message"]
        assert "Did you mean" not in message and ("venz" in message or "lmit" in message), message


async def test_development_keeps_them(client):
    assert (await gql(client, "{ __schema { queryType { name } } }")) == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    graphiql = await client.get("/graphql", headers={"Accept": "text/html"})
    assert graphiql.status_code == 200 and "graphiql" in graphiql.text.lower()
    assert (await client.get("/graphql", params={"query": "{ __typename }"})).json() == {"data": {"__typename": "Query"}}
    assert "Did you mean" in (await gql(client, "{ venz { venId } }"))["errors"][0]["message"]


async def test_a_subscription_posted_over_http_is_a_clear_400(client):
    # Multipart (or SSE) streaming is not offered: the answer names the websocket, and only it.
    for accept in ("application/json", 'multipart/mixed;subscriptionSpec="1.0",application/json'):
        r = await client.post("/graphql", json={"query": "subscription { eventUpdates { eventId } }"},
                              headers={"Accept": accept})
        assert r.status_code == 400
        message = r.json()["errors"][0]["message"]
        assert "websocket" in message and "multipart" not in message, message
