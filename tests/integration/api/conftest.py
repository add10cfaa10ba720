"""Fixtures for the API against real NATS and Postgres (isolated per test)."""

from __future__ import annotations

import httpx
import nats
import pytest

from datetime import datetime, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.api.app import create_app
from adrstack.api.settings import ApiSettings
from adrstack.shared.api_tokens import Role, create_token
from adrstack.shared import kv_keys
from adrstack.shared.db import async_engine
from adrstack.shared.messages import GroupRecord
from adrstack.shared.tables import Ven

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


@pytest.fixture
def secure_settings(api_settings) -> ApiSettings:
    """The same API with API tokens required."""
    return api_settings.model_copy(update={"api_auth": True})


@pytest.fixture
async def secure_app(secure_settings):
    app = create_app(secure_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def secure_client(secure_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=secure_app), base_url="http://api") as c:
        yield c


@pytest.fixture
async def tokens(engine) -> dict[str, str]:
    """One live token per role, by role name ("viewer", "operator", "admin")."""
    return {role.value: (await create_token(engine, role, f"test {role.value}")).token for role in Role}


@pytest.fixture
async def known(engine, nc, api_settings):
    """Two registered VENs (ven-a, ven-b) and a group "north" holding ven-b."""
    at = datetime(2030, 3, 1, 12, 0, tzinfo=timezone.utc)
    async with AsyncSession(engine) as s:
        for ven_id in ("ven-a", "ven-b"):
            s.add(Ven(ven_id=ven_id, ven_name=f"b-{ven_id}", registration_id=f"r-{ven_id}", registered_at=at,
                      updated_at=at))
        await s.commit()
    kv = await nc.jetstream().key_value(api_settings.groups_bucket)
    await kv.put(kv_keys.group_key("north"), GroupRecord(group_id="north", ven_ids=["ven-b"]).to_bytes())
