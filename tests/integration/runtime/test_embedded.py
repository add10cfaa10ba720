"""The embedded servers `adrstack up` falls back to: start beside busy ports, migrate, stop cleanly,
and start again on the same data."""

from __future__ import annotations

import nats
import psutil
import psycopg

from adrstack.runtime import migrate
from adrstack.runtime.embedded import EmbeddedNats, EmbeddedPostgres
from adrstack.runtime.ports import port_answers


async def test_embedded_nats_and_postgres_start_migrate_stop_and_restart(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    n = EmbeddedNats(tmp_path / "nats", preferred_port=4222, tie_to_parent=True)
    p = EmbeddedPostgres(tmp_path / "postgres", preferred_port=5432, tie_to_parent=True)
    busy = {port for port in (4222, 5432) if port_answers(port)}  # before we start anything ourselves
    try:
        n.start(logs / "nats.log")
        p.start(logs / "postgres.log")
        # Where the machine already runs NATS/Postgres, the embedded ones picked other ports.
        assert n.port not in busy and p.port not in busy

        nc = await nats.connect(n.url)
        try:
            assert (await nc.jetstream().account_info()).limits is not None
        finally:
            await nc.close()

        migrate.upgrade(p.url)
        migrate.check(p.url)
        with psycopg.connect(p.url) as conn:
            tables = {t for (t,) in conn.execute("select tablename from pg_tables where schemaname='public'")}
            conn.execute("insert into vens (ven_id, ven_name, registration_id, registered_at, profile_name, "
                         "transport_name, http_pull_model, report_only, updated_at) "
                         "values ('v1', 'n1', 'r1', now(), '2.0b', 'simpleHttp', true, false, now())")
            conn.commit()
        assert {"vens", "readings", "dr_events", "event_responses"} <= tables
        servers = [psutil.Process(n.proc.pid), psutil.Process(p.proc.pid)]
        server_tree = servers + servers[1].children(recursive=True)
    finally:
        p.stop()
        n.stop()
    assert n.proc.returncode == 0 and p.proc.returncode == 0
    assert not [s for s in server_tree if s.is_running() and s.status() != psutil.STATUS_ZOMBIE]

    # The data survives: a second start on the same folders sees the row.
    p2 = EmbeddedPostgres(tmp_path / "postgres", preferred_port=5432).start(logs / "postgres.log")
    try:
        with psycopg.connect(p2.url) as conn:
            assert conn.execute("select ven_name from vens").fetchall() == [("n1",)]
    finally:
        p2.stop()
