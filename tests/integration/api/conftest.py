"""Fixtures for the API against real NATS and Postgres (isolated per test)."""

from __future__ import annotations

import httpx
import nats
import pytest

from adrstack.api.app import create_app
from adrstack.api.settings import ApiSettings
from adrstack.shared.db import async_engine

from .helpers import FakeScheduler

KNOWN_VENS = {"ven123", "ven-a", "ven-b"}


@pytest.fixture
def api_settings(isolated_settings) -> ApiSettings:
    return ApiSettings(**isolated_settings.model_dump(), command_timeout=2.0)


@pytest.fixture
async def app(api_settings):
    app = create_app(api_settings)
    # httpx's ASGITransport does not run the lifespan; run it around the test.
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        yield c


@pytest.fixture
async def nc(api_settings):
    conn = await nats.connect(api_settings.nats_url)
    yield conn
    await conn.drain()


@pytest.fixture
async def scheduler(nc, api_settings):
    fake = await FakeScheduler(nc, api_settings.subjects, set(KNOWN_VENS)).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def engine(api_settings):
    eng = async_engine(api_settings.database_url)
    yield eng
    await eng.dispose()
