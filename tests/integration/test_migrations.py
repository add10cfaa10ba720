"""Migrations build the schema from an empty database and match the SQLModel tables."""

from datetime import datetime, timedelta, timezone

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


def test_0007_partitions_readings_by_day_keyed_by_the_point_and_keeps_every_row(fresh_database):
    from alembic import command

    from adrstack.runtime.migrate import alembic_config

    upgrade(fresh_database, "0006")
    with psycopg.connect(fresh_database) as conn:
        conn.execute("insert into readings (ven_id, report_specifier_id, r_id, at, value, received_at) "
                     "select 'v', 'rs', 'r' || i, '2026-01-01T00:00:00Z'::timestamptz + i * interval '7 hours', i, "
                     "now() from generate_series(0, 9) i")
        conn.execute("insert into readings (ven_id, report_specifier_id, r_id, at, value, received_at) "
                     "values ('v', 'rs', 'far', '2999-01-01T00:00:00Z', 42, now())")
    upgrade(fresh_database)
    check(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        kind = conn.execute("select relkind from pg_class where relname = 'readings'").fetchone()[0]
        pk = conn.execute("select pg_get_constraintdef(oid) from pg_constraint "
                          "where conrelid = 'readings'::regclass and contype = 'p'").fetchone()[0]
        cols = {r[0] for r in conn.execute(
            "select column_name from information_schema.columns where table_name = 'readings'")}
        placed = dict(conn.execute("select tableoid::regclass::text, count(*) from readings group by 1").fetchall())
        days = {r[0] for r in conn.execute("select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
                                           "where i.inhparent = 'readings'::regclass")}
        total = conn.execute("select count(*), sum(value) from readings").fetchone()
    assert kind == "p"  # partitioned
    assert pk == "PRIMARY KEY (ven_id, at, report_specifier_id, r_id)"
    assert "id" not in cols
    assert total == (11, 87.0)
    # 7-hour steps from 2026-01-01 00:00 over 63 hours: three days, each its own partition, plus
    # yesterday .. today+7 (nine days); the year 2999 waits in the default partition.
    assert placed == {"readings_p20260101": 4, "readings_p20260102": 3, "readings_p20260103": 3,
                      "readings_default": 1}
    today = datetime.now(timezone.utc).date()
    ahead = {f"readings_p{today + timedelta(days=i):%Y%m%d}" for i in range(-1, 8)}
    assert days == {"readings_default", "readings_p20260101", "readings_p20260102", "readings_p20260103"} | ahead

    command.downgrade(alembic_config(fresh_database), "0006")
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("select count(*), sum(value), count(distinct id) from readings").fetchone() == (11, 87.0, 11)
        assert conn.execute("select to_regclass('readings_p20260101')").fetchone()[0] is None
    upgrade(fresh_database)
    check(fresh_database)


def test_readings_far_from_now_are_stored_in_the_default_partition(fresh_database):
    upgrade(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        for at in ("0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "9999-12-31T00:00:00Z"):
            conn.execute("insert into readings (ven_id, report_specifier_id, r_id, at, value, received_at) "
                         "values ('v', 'rs', 'r', %s, 1.0, now())", (at,))
        assert conn.execute("select count(*) from readings_default").fetchone()[0] == 3


def test_0011_rolls_up_every_stored_reading_into_the_days_of_readings(fresh_database):
    from alembic import command

    from adrstack.runtime.migrate import alembic_config

    upgrade(fresh_database, "0006")  # 0007 then gives these readings their days, 0011 the rollups theirs
    with psycopg.connect(fresh_database) as conn:
        # Every 5 minutes for 2.5 hours from 23:00 (two days), plus a reading the default partition holds.
        conn.execute("insert into readings (ven_id, report_specifier_id, r_id, at, value, received_at) "
                     "select 'v', 'rs', 'r', '2026-01-01T23:00:00Z'::timestamptz + i * interval '5 minutes', i, "
                     "now() from generate_series(0, 29) i")
        conn.execute("insert into readings (ven_id, report_specifier_id, r_id, unit, at, value, received_at) "
                     "values ('v', 'rs', 'far', 'W', '2999-01-01T00:00:00Z', 42, now())")
    upgrade(fresh_database)
    check(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        rolled = conn.execute("select r_id, unit, to_char(bucket at time zone 'UTC', 'DD HH24:MI'), n, total, mn, mx, "
                              "tableoid::regclass::text from readings_15m order by bucket").fetchall()
        days = {r[0] for r in conn.execute("select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
                                           "where i.inhparent = 'readings_15m'::regclass")}
    assert rolled == [
        ("r", "", f"{1 + (23 * 60 + 15 * k) // 1440:02d} {(23 + (15 * k) // 60) % 24:02d}:{15 * k % 60:02d}", 3,
         float(9 * k + 3), float(3 * k), float(3 * k + 2), f"readings_15m_p2026010{1 + (k >= 4)}")
        for k in range(10)] + [("far", "W", "01 00:00", 1, 42.0, 42.0, 42.0, "readings_15m_default")]
    today = datetime.now(timezone.utc).date()
    assert {f"readings_15m_p{today + timedelta(days=i):%Y%m%d}" for i in range(-1, 8)} | {
        "readings_15m_default", "readings_15m_p20260101", "readings_15m_p20260102"} <= days

    command.downgrade(alembic_config(fresh_database), "0008")
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("select to_regclass('readings_15m'), to_regclass('readings_15m_p20260101')").fetchone() \
            == (None, None)
    upgrade(fresh_database)
    check(fresh_database)
