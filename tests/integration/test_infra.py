"""The fixture layer itself: real servers answer, and the testcontainers path skips cleanly."""

from __future__ import annotations

import nats
import psycopg
import pytest

from tests.conftest import docker_answers


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


def test_testcontainers_path():
    reason = docker_answers()
    if reason:
        pytest.skip(f"testcontainers path not exercised: {reason}")
    from testcontainers.nats import NatsContainer

    with NatsContainer().with_command("-js") as c:
        assert c.nats_uri().startswith("nats://")
