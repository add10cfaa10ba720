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


def test_0004_collapses_resent_opt_responses_into_history_and_current_state(fresh_database):
    upgrade(fresh_database, "0003")
    rows = [  # (ven, event, mod, opt_type, minute): re-sent copies as 0001-0003 stored them
        ("v1", "e1", 0, "optIn", 0), ("v1", "e1", 0, "optIn", 1), ("v1", "e1", 0, "optIn", 12),
        ("v1", "e1", 0, "optOut", 13), ("v1", "e1", 0, "optOut", 14), ("v1", "e1", 0, "optIn", 15),
        ("v1", "e1", 1, "optIn", 16), ("v1", "e1", 1, "optIn", 17),
        ("v2", "e1", 0, "optOut", 2), ("v2", "e1", 0, "optOut", 3),
        ("v2", "e2", None, "optIn", 4), ("v2", "e2", None, "optIn", 5),
    ]
    with psycopg.connect(fresh_database) as conn:
        for ven, event, mod, opt, minute in rows:
            conn.execute("insert into event_responses (id, ven_id, event_id, modification_number, opt_type, "
                         "source, responded_at) values (gen_random_uuid(), %s, %s, %s, %s, 'oadrCreatedEvent', "
                         "'2026-01-01T00:00:00Z'::timestamptz + make_interval(mins => %s))",
                         (ven, event, mod, opt, minute))
    upgrade(fresh_database)
    check(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        history = conn.execute(
            "select ven_id, event_id, modification_number, opt_type, extract(minute from responded_at)::int "
            "from event_responses order by ven_id, event_id, responded_at").fetchall()
        state = conn.execute(
            "select s.ven_id, s.event_id, s.modification_number, s.opt_type, "
            "extract(minute from s.responded_at)::int, r.id is not null from event_opt_states s "
            "left join event_responses r on r.id = s.response_id order by s.ven_id, s.event_id").fetchall()
    assert history == [
        ("v1", "e1", 0, "optIn", 0), ("v1", "e1", 0, "optOut", 13), ("v1", "e1", 0, "optIn", 15),
        ("v1", "e1", 1, "optIn", 16), ("v2", "e1", 0, "optOut", 2), ("v2", "e2", None, "optIn", 4),
    ]
    assert state == [("v1", "e1", 1, "optIn", 16, True), ("v2", "e1", 0, "optOut", 2, True),
                     ("v2", "e2", None, "optIn", 4, True)]
