"""A database or NATS outage reaches callers as a generic message with a code (UNAVAILABLE), never
the driver's text, hosts, ports or database names; the details go to the log."""

from __future__ import annotations

import logging

import httpx
import pytest

from adrstack.api.app import create_app
from adrstack.runtime.ports import free_port

from .helpers import bearer, gql

SEND_EVENT = {"ven_id": "ven123", "event_id": "ev-masked", "signal_level": 1}
CREATE = 'mutation { createEvent(input: {venIds: ["ven-a"], intervals: [{duration: "PT1H", payload: 1}]}) { eventId } }'
# What driver and client messages are made of; none may reach a caller.
LEAKS = ("127.0.0.1", "localhost", "port", "psycopg", "sqlalchemy", "connection", "nats:", "4222", "5432",
         "database", "adrstack_", "Errno", "refused", "Traceback")


def assert_nothing_leaks(text: str, *also: str) -> None:
    lowered = text.lower()
    for word in (*LEAKS, *also):
        assert word.lower() not in lowered, f"{word!r} reached the caller: {text}"


@pytest.fixture(params=["closed port", "no such database"])
def unreachable_database(request, api_settings, infra):
    if request.param == "closed port":
        return f"postgresql://postgres@127.0.0.1:{free_port()}/adrstack_gone"
    return infra.database("adrstack_gone_db")


async def with_client(settings, body):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            await body(app, c)


async def test_a_database_outage_is_unavailable_without_details(api_settings, unreachable_database, caplog):
    settings = api_settings.model_copy(update={"database_url": unreachable_database})

    async def body(app, c):
        for query in ("{ vens { venId } }", "{ events { eventId } }", "{ apiTokens { id } }"):
            data = await gql(c, query)
            (error,) = data["errors"]
            assert error["extensions"] == {"code": "UNAVAILABLE", "field": None}, data
            assert error["message"] == "a service the API depends on is unavailable; try again later"
            assert_nothing_leaks(str(data), unreachable_database.rsplit("/", 1)[1])

    with caplog.at_level(logging.ERROR):
        await with_client(settings, body)
    # The details are in the log, for the operator.
    assert "psycopg.OperationalError" in caplog.text


async def test_with_tokens_on_a_database_outage_is_503_not_401(secure_settings, unreachable_database, tokens):
    settings = secure_settings.model_copy(update={"database_url": unreachable_database})

    async def body(app, c):
        r = await c.post("/graphql", json={"query": "{ vens { venId } }"}, headers=bearer(tokens["viewer"]))
        assert r.status_code == 503
        assert r.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        assert_nothing_leaks(r.text)
        r = await c.post("/send_event", json=SEND_EVENT, headers=bearer(tokens["operator"]))
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert_nothing_leaks(r.text)

    await with_client(settings, body)


async def test_a_nats_outage_is_unavailable_without_details(app, client, caplog):
    await app.state.api.nc.close()
    with caplog.at_level(logging.ERROR):
        data = await gql(client, CREATE)
        assert data["errors"][0]["extensions"] == {"code": "UNAVAILABLE", "field": None}, data
        assert_nothing_leaks(str(data), "closed")
        provision = await gql(client, 'mutation { provisionVen(venName: "b", '
                                      'certFingerprint: "7A:1F:00:11:22:33:44:55:66:C3") { venName } }')
        assert provision["errors"][0]["extensions"]["code"] == "UNAVAILABLE", provision
        assert_nothing_leaks(str(provision), "closed")
        r = await client.post("/send_event", json=SEND_EVENT)
        assert r.status_code == 503 and r.json() == {"error": "unavailable", "field": None,
                                                       "message": "a service the API depends on is unavailable; "
                                                                  "try again later"}
    assert "ConnectionClosedError" in caplog.text


async def test_callers_errors_still_say_what_is_wrong(client, scheduler):
    data = await gql(client, 'mutation { cancelEvent(eventId: "bad id") { eventId } }')
    assert data["errors"][0]["extensions"] == {"code": "INVALID", "field": "eventId"}
    assert "bad id" in data["errors"][0]["message"]
    data = await gql(client, 'mutation { cancelEvent(eventId: "ev-unknown") { eventId } }')
    assert data["errors"][0]["extensions"]["code"] == "NOT_FOUND"
