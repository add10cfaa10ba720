"""Migrations build the schema from an empty database and match the SQLModel tables."""

import psycopg

from adrstack.runtime.migrate import check, upgrade


def test_upgrade_head_on_empty_database_then_check_is_clean(fresh_database):
    upgrade(fresh_database)
    check(fresh_database)  # raises if the models and the migrated schema differ
    with psycopg.connect(fresh_database) as conn:
        version = conn.execute("select version_num from alembic_version").fetchone()[0]
        cols = {r[0] for r in conn.execute(
            "select column_name from information_schema.columns where table_name = 'readings'")}
    assert version
    assert {"ven_id", "r_id", "at", "value", "report_specifier_id"} <= cols


def test_upgrade_is_idempotent(fresh_database):
    upgrade(fresh_database)
    upgrade(fresh_database)
    check(fresh_database)


def test_readings_refuse_duplicates_by_design(fresh_database):
    upgrade(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        insert = ("insert into readings (ven_id, report_specifier_id, r_id, at, value, received_at) "
                  "values ('v', 'rs', 'r', '2026-01-01T00:00:00Z', 1.0, now()) on conflict do nothing")
        conn.execute(insert)
        conn.execute(insert)
        assert conn.execute("select count(*) from readings").fetchone()[0] == 1


def test_api_tokens_keep_a_known_role_only(fresh_database):
    upgrade(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        insert = ("insert into api_tokens (id, role, secret_sha256, created_at) "
                  "values (%s, %s, 'x', now())")
        conn.execute(insert, ("a", "viewer"))
        try:
            conn.execute(insert, ("b", "root"))
        except psycopg.errors.CheckViolation:
            pass
        else:
            raise AssertionError("a token with role 'root' was stored")
