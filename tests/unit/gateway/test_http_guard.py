"""The guard middleware in front of any handler (a stand-in handler; no NATS, no openleadr)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adrstack.gateway.http_guard import guard_middleware

PREFIX = "/OpenADR2/Simple/2.0b"


async def client_for(handler, limit=1000) -> TestClient:
    app = web.Application(client_max_size=limit, middlewares=[guard_middleware(limit, PREFIX)])
    app.router.add_post(PREFIX + "/OadrPoll", handler)
    app.router.add_get("/other", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def echo(request: web.Request) -> web.Response:
    return web.Response(text=f"{request.headers['Content-Type']}|{len(await request.read())}")


async def test_handler_sees_the_body_and_normalised_content_type():
    client = await client_for(echo)
    try:
        r = await client.post(PREFIX + "/OadrPoll", data=b"<x/>", headers={"Content-Type": "text/xml; charset=utf-8"})
        assert r.status == 200 and await r.text() == "application/xml; charset=utf-8|4"
    finally:
        await client.close()


async def test_unexpected_exceptions_become_a_clean_500_and_the_server_goes_on():
    calls = []

    async def boom(request):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return web.Response(text="fine")

    client = await client_for(boom)
    try:
        r = await client.post(PREFIX + "/OadrPoll", data=b"<x/>", headers={"Content-Type": "application/xml"})
        assert r.status == 500 and "bug" not in await r.text()
        r = await client.post(PREFIX + "/OadrPoll", data=b"<x/>", headers={"Content-Type": "application/xml"})
        assert r.status == 200 and await r.text() == "fine"
    finally:
        await client.close()


async def test_limits_apply_only_to_openadr_posts():
    client = await client_for(echo, limit=10)
    try:
        r = await client.post(PREFIX + "/OadrPoll", data=b"<x>" + b"a" * 20 + b"</x>",
                              headers={"Content-Type": "application/xml"})
        assert r.status == 413
        r = await client.post(PREFIX + "/OadrPoll", data=b"<x/>", headers={"Content-Type": "text/plain"})
        assert r.status == 415
        r = await client.post(PREFIX + "/OadrPoll", data=b"<!DOCTYPE x><x/>"[:10],
                              headers={"Content-Type": "application/xml"})
        assert r.status == 400
        r = await client.get("/other", headers={"Content-Type": "text/plain"})
        assert r.status == 200
    finally:
        await client.close()
