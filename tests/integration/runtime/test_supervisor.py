"""The real Supervisor over stand-in children, run as its own process: restarts, clean stops, no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.helpers import wait_until

from .proctools import Output, alive, describe, descendants
from .standins import CRASH_ONCE, FORKER, STEADY, STUBBORN, argv

DRIVER = Path(__file__).with_name("standin_supervisor.py")
ROOT = Path(__file__).resolve().parents[3]


def start_supervisor(children: dict[str, list[str]], stop_timeout: float = 10, backoff: float = 0.2):
    config = json.dumps({"children": children, "stop_timeout": stop_timeout, "backoff": backoff})
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(DRIVER), config], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    return proc, Output(proc)


def stop(proc: subprocess.Popen, out: Output, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    finally:
        out.join()


@pytest.fixture
def reaper():
    """Kills whatever a failed test leaves behind, so one failure does not leak into the next test."""
    procs: list[psutil.Process] = []
    yield procs
    for p in alive(procs):
        p.kill()


def test_a_child_that_dies_is_reported_and_restarted(tmp_path, reaper):
    counter = tmp_path / "runs"
    proc, out = start_supervisor({"crasher": argv(CRASH_ONCE, str(counter)), "steady": argv(STEADY)})
    try:
        wait_until(lambda: len(out.matching("crasher   | ready")) == 1, timeout=20, message="crasher restarted")
        reaper.extend(descendants(proc.pid))
        assert out.has("crasher   | crashing on purpose")
        assert out.has("adrstack  | crasher exited with code 3; restarting in 0.2s")
        assert counter.read_text() == "2"
        # The healthy sibling was started once and never disturbed.
        assert len(out.matching("steady    | ready")) == 1
        assert not out.has("steady exited")
    finally:
        code = stop(proc, out)
    assert code == 0, out.text
    assert out.has("crasher   | bye") and out.has("steady    | bye")


def test_restart_delays_grow_while_a_child_keeps_dying(reaper):
    proc, out = start_supervisor({"flaky": argv("import sys; sys.exit(7)")}, backoff=0.1)
    try:
        wait_until(lambda: len(out.matching("flaky exited with code 7")) >= 4, timeout=20, message="four restarts")
        delays = [line.rsplit("restarting in ", 1)[1] for line in out.matching("flaky exited with code 7")][:4]
        assert delays == ["0.1s", "0.2s", "0.4s", "0.8s"]
    finally:
        assert stop(proc, out) == 0, out.text


def test_sigterm_stops_every_child_and_its_group_leaving_no_orphans(reaper):
    proc, out = start_supervisor(
        {"steady": argv(STEADY), "stubborn": argv(STUBBORN), "forker": argv(FORKER)}, stop_timeout=2)
    try:
        wait_until(lambda: out.has("steady    | ready") and out.has("stubborn  | ready")
                   and out.has("forker    | ready"), timeout=20, message="children ready")
        tree = descendants(proc.pid)
        reaper.extend(tree)
        assert len(tree) == 4, describe(tree)  # three children and the forker's grandchild
        for p in tree:
            assert os.getpgid(p.pid) != os.getpgid(proc.pid)  # each child leads its own group
    finally:
        code = stop(proc, out)
    assert code == 0, out.text
    assert out.has("stubborn did not stop within 2s; killing it")
    assert out.has("steady    | bye")
    assert not alive(tree), describe(alive(tree))


def test_sigint_is_a_clean_stop_too(reaper):
    proc, out = start_supervisor({"steady": argv(STEADY)})
    wait_until(lambda: out.has("steady    | ready"), timeout=20, message="child ready")
    tree = descendants(proc.pid)
    reaper.extend(tree)
    assert stop(proc, out, signal.SIGINT) == 0, out.text
    assert out.has("steady    | bye") and not alive(tree)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_die_with_a_killed_supervisor(reaper):
    proc, out = start_supervisor({"steady": argv(STEADY), "stubborn": argv(STUBBORN)})
    wait_until(lambda: out.has("steady    | ready") and out.has("stubborn  | ready"), timeout=20,
               message="children ready")
    children = descendants(proc.pid)
    reaper.extend(children)
    assert len(children) == 2
    stop(proc, out, signal.SIGKILL)
    wait_until(lambda: not alive(children), timeout=10, message="children gone after the supervisor's SIGKILL")


async def test_servers_restart_after_their_clean_up_and_stop_after_the_services(tmp_path):
    """What `up` relies on for its embedded servers, with stand-in shells: a killed server is
    cleaned up after (given the dead pid), restarted and reported back once its probe passes; on
    stop the services' layer is gone before the servers get their stop signal."""
    import asyncio
    import io

    from adrstack.runtime.supervisor import SERVERS_LAYER, Backoff, ChildSpec, Supervisor
    from tests.helpers import eventually

    order = tmp_path / "order"
    cleaned: list[int] = []

    def shell(name: str, sig: str, pause: float = 0) -> list[str]:
        """Notes its stop in ``order`` (after ``pause`` seconds) when it gets ``sig``."""
        return ["sh", "-c", f'trap "sleep {pause}; echo {name} >> {order}; exit 0" {sig}; '
                            "while :; do sleep 0.05; done"]

    out = io.StringIO()
    sup = Supervisor(out, backoff=Backoff(initial=0.1))
    server = sup.start(ChildSpec("server", shell("server", "INT"),
                                 layer=SERVERS_LAYER, about="a stand-in server", stop_signal=signal.SIGINT,
                                 log_file=tmp_path / "server.log", ready=lambda: True,
                                 before_restart=lambda pid: cleaned.append(pid) or f"cleaned after {pid}"))
    await sup.wait_ready("server", 10)
    sup.start(ChildSpec("service", shell("service", "TERM", 0.3)))
    first = server.proc.pid
    os.kill(first, signal.SIGKILL)
    await eventually(lambda: server.starts == 2 and server.ready.is_set(), 10, message="server restarted")
    text = out.getvalue()
    assert "server (a stand-in server) exited with code -9 (SIGKILL); restarting in 0.1s" in text
    assert f"server: cleaned after {first}" in text and cleaned == [first]
    await eventually(lambda: f"server (a stand-in server) is back (pid {server.proc.pid}, start 2)" in out.getvalue(),
                     5, message="back reported")
    await asyncio.wait_for(sup.stop(), 20)
    assert order.read_text().split() == ["service", "server"]
    assert not alive([psutil.Process(pid) for pid in server.pids if psutil.pid_exists(pid)])
