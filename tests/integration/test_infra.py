"""The fixture layer itself: real servers answer, and the testcontainers path skips cleanly."""

from __future__ import annotations

import nats
import psycopg
import pytest

from adrstack.runtime.migrate import upgrade
from tests.conftest import docker_answers
from tests.helpers import NATS_IMAGE, POSTGRES_IMAGE, nats_container, postgres_container


async def test_nats_has_jetstream(infra):
    nc = await nats.connect(infra.nats_url)
    try:
        info = await nc.jetstream().account_info()
        assert info.limits is not None
    finally:
        await nc.close()


def test_isolated_database_is_migrated_and_empty(isolated_settings):
    with psycopg.connect(isolated_settings.database_url) as conn:
        tables = {r[0] for r in conn.execute("select tablename from pg_tables where schemaname='public'")}
        assert {"vens", "dr_events", "readings", "event_responses", "alembic_version"} <= tables
        assert conn.execute("select count(*) from vens").fetchone()[0] == 0


def image_version(image: str) -> str:
    """'nats:2.10.24-alpine' -> '2.10.24'"""
    return image.split(":")[1].split("-")[0]


@pytest.fixture
def docker_engine():
    reason = docker_answers()
    if reason:
        pytest.skip(f"testcontainers path not exercised: {reason}")


async def test_testcontainers_nats_of_the_pinned_image_has_jetstream(docker_engine):
    with nats_container() as c:
        nc = await nats.connect(c.nats_uri())
        try:
            info = await nc.jetstream().account_info()
            assert info.limits is not None
            v = nc.connected_server_version
            assert f"{v.major}.{v.minor}.{v.patch}" == image_version(NATS_IMAGE)
        finally:
            await nc.close()


def test_testcontainers_postgres_of_the_pinned_image_migrates(docker_engine):
    with postgres_container() as c:
        url = c.get_connection_url()
        upgrade(url)
        with psycopg.connect(url) as conn:
            assert conn.execute("show server_version").fetchone()[0].startswith(image_version(POSTGRES_IMAGE) + " ")
            assert conn.execute("select count(*) from vens").fetchone()[0] == 0
