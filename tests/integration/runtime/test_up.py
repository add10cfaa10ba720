"""`adrstack up` as users run it, with stand-in services: port errors, infrastructure, migrations,
what children receive, the printed URLs, and a SIGTERM that leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from adrstack.runtime.embedded import drop_database
from adrstack.runtime.ports import free_port, port_answers
from adrstack.shared.settings import CommonSettings
from tests.conftest import Infra, _cleanup_nats, unique_names
from tests.helpers import STACK_NAME_FIELDS, TEST_STREAM_LIMITS, wait_until

from .proctools import Output, alive, describe, descendants

HERE = Path(__file__).parent
STANDINS = HERE / "standin_services"


def up_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "adrstack.runtime.cli", "up", *args]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("flag,what", [("--vtn-port", "VTN"), ("--api-port", "API")])
def test_a_busy_port_is_a_one_line_error_before_anything_starts(busy_port, flag, what, tmp_path):
    data_dir = tmp_path / "data"
    other = "--api-port" if flag == "--vtn-port" else "--vtn-port"
    r = subprocess.run(up_command(flag, str(busy_port), other, str(free_port()), "--data-dir", str(data_dir)),
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=base_env())
    assert r.returncode == 2, r
    assert r.stderr == f"adrstack: port {busy_port} ({what}) is already in use; pick another with {flag}\n"
    assert not data_dir.exists()  # nothing was started or created


def test_migrate_command_creates_and_upgrades_a_database(infra: Infra, tmp_path):
    names = unique_names()
    url = infra.database(names["database"])
    # Its own stream and buckets on the machine's NATS (never the defaults another stack may use).
    stack = CommonSettings(nats_url=infra.nats_url, **{k: names[k] for k in STACK_NAME_FIELDS}, **TEST_STREAM_LIMITS)
    env = base_env(DATABASE_URL=url, NATS_URL=infra.nats_url,
                   **{f"ADRSTACK_{k.upper()}": str(getattr(stack, k)) for k in (*STACK_NAME_FIELDS, *TEST_STREAM_LIMITS)})
    try:
        r = subprocess.run([sys.executable, "-m", "adrstack.runtime.cli", "migrate"], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path, env=env)
        assert r.returncode == 0, r
        with psycopg.connect(url) as conn:
            tables = {t for (t,) in conn.execute("select tablename from pg_tables where schemaname='public'")}
        assert {"vens", "dr_events", "readings", "alembic_version"} <= tables
        assert f"stream {stack.stream_name}" in r.stdout + r.stderr
    finally:
        drop_database(infra.admin_url, names["database"])
        _cleanup_nats(stack)


@pytest.mark.parametrize("source", ["env-urls", "embedded"])
def test_up_runs_migrates_supervises_and_stops_cleanly(source, infra: Infra, tmp_path):
    data_dir, cwd = tmp_path / "data", tmp_path / "elsewhere"
    cwd.mkdir()
    vtn_port, api_port = free_port(), free_port()
    env = base_env(PYTHONPATH=os.pathsep.join([str(STANDINS), os.environ.get("PYTHONPATH", "")]),
                   ADRSTACK_SUBJECT_PREFIX="tup")
    names = unique_names()
    db_name = names["database"]
    # On the machine's servers: its own stream and buckets (sized as the test stacks'), removed after.
    stack = CommonSettings(nats_url=infra.nats_url, **{k: names[k] for k in STACK_NAME_FIELDS if k != "subject_prefix"},
                           subject_prefix="tup", **TEST_STREAM_LIMITS)
    if source == "env-urls":  # the database does not exist yet: up creates it
        env.update(NATS_URL=infra.nats_url, DATABASE_URL=infra.database(db_name),
                   **{f"ADRSTACK_{k.upper()}": str(getattr(stack, k)) for k in (*STACK_NAME_FIELDS, *TEST_STREAM_LIMITS)})
    busy = {port for port in (4222, 5432) if port_answers(port)}  # before up starts its own servers
    proc = subprocess.Popen(
        up_command("--vtn-port", str(vtn_port), "--api-port", str(api_port), "--data-dir", str(data_dir),
                   "--demo", "2", "--poll-interval", "3", "--host", "127.0.0.1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    out = Output(proc)
    tree = []
    try:
        wait_until(lambda: out.has("simulator | ready") and out.has("telemetry | tables")
                   and out.has("scheduler | jetstream ok") or proc.poll() is not None,
                   timeout=120, message="stack up")
        assert proc.poll() is None, out.text
        tree = descendants(proc.pid)

        # The URLs, printed once both /health answer.
        assert out.has(f"adrstack  |   VTN        http://localhost:{vtn_port}/OpenADR2/Simple/2.0b")
        assert out.has(f"adrstack  |   GraphQL    http://localhost:{api_port}/graphql")
        assert out.has(f"adrstack  |   Dashboard  http://localhost:{api_port}/")
        nats_url = re.search(r"NATS\s+(nats://\S+)", out.text).group(1)
        database_url = re.search(r"Database\s+(postgresql://\S+)", out.text).group(1)
        health = re.search(r"Health\s+scheduler (http://127\.0\.0\.1:(\d+)/readyz)\s+"
                           r"telemetry (http://127\.0\.0\.1:(\d+)/readyz)$", out.text, re.M)
        assert health, out.text
        # Where `adrstack tail` finds this up's NATS while it runs.
        running = json.loads((data_dir / "run" / "endpoints.json").read_text())
        assert (running["pid"], running["nats_url"], running["subject_prefix"]) == (proc.pid, nats_url, "tup")
        assert running["health"]["scheduler"] == health.group(1)

        # What every service was given.
        env_lines = {line.split(" | ")[0].strip(): json.loads(line.split(" env ", 1)[1])
                     for line in out.matching(" | env {")}
        assert set(env_lines) == {"gateway", "scheduler", "telemetry", "api", "simulator"}
        gw = env_lines["gateway"]
        assert (gw["ADRSTACK_VTN_HOST"], gw["ADRSTACK_VTN_PORT"]) == ("127.0.0.1", str(vtn_port))
        assert (gw["ADRSTACK_API_HOST"], gw["ADRSTACK_API_PORT"]) == ("127.0.0.1", str(api_port))
        assert gw["ADRSTACK_POLL_INTERVAL"] == "3" and gw["ADRSTACK_SUBJECT_PREFIX"] == "tup"
        assert gw["NATS_URL"] == nats_url and gw["DATABASE_URL"] == database_url
        assert env_lines["scheduler"]["ADRSTACK_SCHEDULER_HEALTH_PORT"] == health.group(2)
        assert env_lines["telemetry"]["ADRSTACK_TELEMETRY_HEALTH_PORT"] == health.group(4)
        sim_argv = json.loads(out.matching("simulator | argv")[0].split(" argv ", 1)[1])
        assert sim_argv == ["--vens", "2", "--vtn-url", f"http://127.0.0.1:{vtn_port}/OpenADR2/Simple/2.0b",
                            "--name-prefix", "demo-ven", "--opt-out-rate", "0.34"]

        # The schema is in place (the telemetry stand-in listed the tables).
        tables = out.matching("telemetry | tables:")[0]
        assert "vens" in tables and "readings" in tables and "alembic_version" in tables

        # Each service is its own process whose command line names it.
        cmdlines = [" ".join(p.cmdline()) for p in tree]
        for module in ("gateway", "scheduler", "telemetry", "api", "simulator"):
            assert any(f"-m adrstack.{module}" in c for c in cmdlines), cmdlines

        if source == "embedded":
            assert nats_url.startswith("nats://127.0.0.1:") and database_url.startswith("postgresql://postgres@")
            for port, url in ((4222, nats_url), (5432, database_url)):
                if port in busy:  # the machine's own server has it: the embedded one moved elsewhere
                    assert urlsplit(url).port != port, url
            assert (data_dir / "logs" / "nats.log").exists() and (data_dir / "logs" / "postgres.log").exists()
            assert (data_dir / "postgres" / "pgdata" / "PG_VERSION").exists() and (data_dir / "nats").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        out.join()
        try:
            if source == "env-urls":
                drop_database(infra.admin_url, db_name)
                _cleanup_nats(stack)
        finally:
            wait_until(lambda: not alive(tree), timeout=10, message=f"no orphans: {describe(alive(tree))}")
    assert code == 0, out.text
    for name in ("gateway", "scheduler", "telemetry", "api", "simulator"):
        assert out.has(f"{name:<9} | bye"), out.text
    assert out.lines[-1] == "adrstack  | stopped"
    assert not (data_dir / "run" / "endpoints.json").exists(), "the endpoints of a stopped up left behind"
