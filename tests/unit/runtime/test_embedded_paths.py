"""The embedded Postgres's Unix socket: in the data dir when its path fits, none (TCP only) when
the data dir is too deep for one (Postgres would refuse to start)."""

from pathlib import Path

from adrstack.runtime.embedded import EmbeddedPostgres


def test_the_socket_goes_in_the_data_dir_when_its_path_fits():
    pg = EmbeddedPostgres(Path("/var/lib/adrstack/postgres"))
    pg.port = 5432
    argv = pg.argv()
    assert argv[argv.index("-k") + 1] == "/var/lib/adrstack/postgres/sockets"


def test_a_data_dir_too_deep_for_a_socket_path_runs_without_one():
    deep = Path("/tmp/pytest-of-root/pytest-11/popen-gw1/test_up_runs_migrates_supervis1/data/postgres")
    pg = EmbeddedPostgres(deep)
    pg.port = 43763
    argv = pg.argv()
    assert len(f"{deep}/sockets/.s.PGSQL.43763") > 107
    assert argv[argv.index("-k") + 1] == ""
