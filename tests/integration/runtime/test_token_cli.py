"""`adrstack token create|list|revoke` as a subprocess against a real Postgres: the token is printed
once, only its hash is stored, and a revoked token no longer authenticates."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import psycopg

from adrstack.runtime.migrate import upgrade
from adrstack.shared.api_tokens import authenticate, hash_secret, parse_token
from adrstack.shared.db import async_engine


def adrstack(*argv: str, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "adrstack.runtime.cli", "token", *argv], env=env,
                          capture_output=True, text=True, timeout=60)


def authenticates(database_url: str, token: str) -> bool:
    async def run() -> bool:
        engine = async_engine(database_url)
        try:
            return await authenticate(engine, token) is not None
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_create_list_revoke_round_trip(fresh_database):
    upgrade(fresh_database)
    created = adrstack("create", "--role", "operator", "--name", "ci bot", database_url=fresh_database)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert created.stdout == token + "\n"  # the token alone, for TOKEN=$(adrstack token create ...)
    token_id, secret = parse_token(token)
    assert token_id in created.stderr and "operator" in created.stderr and secret not in created.stderr

    with psycopg.connect(fresh_database) as conn:
        stored = conn.execute("select id, name, role, secret_sha256 from api_tokens").fetchall()
    assert stored == [(token_id, "ci bot", "operator", hash_secret(secret))]
    assert authenticates(fresh_database, token)

    listed = adrstack("list", database_url=fresh_database)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.strip().splitlines()
    assert header.split() == ["ID", "NAME", "ROLE", "CREATED", "LAST", "USED", "REVOKED"]
    assert row.startswith(f"{token_id}  ci bot  operator  ") and row.endswith("-")  # used (above), not revoked
    assert secret not in listed.stdout

    revoked = adrstack("revoke", token_id, database_url=fresh_database)
    assert revoked.returncode == 0, revoked.stderr
    assert f"token {token_id} is revoked" in revoked.stdout
    assert not authenticates(fresh_database, token)
    after = adrstack("list", database_url=fresh_database).stdout.strip().splitlines()[1]
    assert not after.endswith("-")  # the revocation time is shown


def test_unknown_id_and_unmigrated_database_are_said_clearly(fresh_database):
    missing_table = adrstack("list", database_url=fresh_database)
    assert missing_table.returncode == 1
    assert "run `adrstack migrate` first" in missing_table.stderr
    upgrade(fresh_database)
    unknown = adrstack("revoke", "0123456789ab", database_url=fresh_database)
    assert unknown.returncode == 1
    assert "no token with id '0123456789ab'" in unknown.stderr
    empty = adrstack("list", database_url=fresh_database)
    assert empty.returncode == 0 and "no tokens yet" in empty.stdout
