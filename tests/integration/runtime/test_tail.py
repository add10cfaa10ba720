"""`adrstack tail` as a subprocess against a real NATS: facts published to the stream show up as one
line each (subject, receive time, compact JSON), other subjects do not, and SIGINT/SIGTERM end it
with status 0."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from datetime import datetime

import nats
import pytest

from adrstack.shared.messages import VenDeregistered, VenSeen
from tests.helpers import stack_env, wait_until
from tests.integration.runtime.proctools import Output


def start_tail(settings, *argv: str) -> tuple[subprocess.Popen, Output]:
    proc = subprocess.Popen([sys.executable, "-m", "adrstack.runtime.cli", "tail", *argv],
                            env=stack_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, Output(proc)


def wait_subscribed(proc: subprocess.Popen) -> None:
    # tail says on stderr once its subscription is in place; reading that line is the readiness probe.
    line = proc.stderr.readline().decode()
    assert "adrstack tail:" in line and "Ctrl-C" in line, line


def publish(settings, *facts: tuple[str, bytes]) -> None:
    async def run() -> None:
        nc = await nats.connect(settings.nats_url)
        try:
            js = nc.jetstream()
            for subject, data in facts:
                await js.publish(subject, data, stream=settings.stream_name)
            await nc.publish("elsewhere.not.tailed", b"{}")
            await nc.flush()
        finally:
            await nc.close()

    asyncio.run(run())


def stop(proc: subprocess.Popen, sig: signal.Signals) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_tail_prints_each_fact_on_one_line_and_stops_cleanly(isolated_settings, sig):
    s = isolated_settings
    proc, out = start_tail(s, "--nats-url", s.nats_url)  # subject: "<prefix>.>" from the environment
    try:
        wait_subscribed(proc)
        seen, gone = VenSeen(ven_id="ven-a"), VenDeregistered(ven_id="ven-b", reason="bye")
        publish(s, (s.subjects.seen("ven-a"), seen.to_bytes()),
                (s.subjects.ven_deregistered("ven-b"), gone.to_bytes()))
        wait_until(lambda: len(out.lines) >= 2, message="two lines from tail")
    finally:
        code = stop(proc, sig)
    assert code == 0, proc.stderr.read().decode()
    assert len(out.lines) == 2, out.text  # the subject outside the prefix is not shown
    parsed = [line.split(" ", 2) for line in out.lines]
    assert [p[0] for p in parsed] == [s.subjects.seen("ven-a"), s.subjects.ven_deregistered("ven-b")]
    for _, when, _ in parsed:
        assert datetime.fromisoformat(when).utcoffset() is not None
    assert json.loads(parsed[0][2]) == json.loads(seen.to_bytes())
    assert parsed[1][2] == json.dumps(json.loads(gone.to_bytes()), separators=(",", ":"))


def test_tail_takes_a_subject_and_shows_non_json_safely(isolated_settings):
    s = isolated_settings
    proc, out = start_tail(s, f"{s.subject_prefix}.ven.*.seen")
    try:
        wait_subscribed(proc)
        publish(s, (s.subjects.report_data("ven-a"), b"{}"), (s.subjects.seen("ven-a"), b"line one\nline two"),
                (s.subjects.seen("ven-b"), b"\xff\xfe"))
        wait_until(lambda: len(out.lines) >= 2, message="two lines from tail")
    finally:
        assert stop(proc, signal.SIGINT) == 0
    assert [line.split(" ", 2)[2] for line in out.lines] == ['text:"line one\\nline two"', "base64://4="]


def test_tail_says_when_nats_does_not_answer():
    from adrstack.runtime.ports import free_port

    proc = subprocess.run([sys.executable, "-m", "adrstack.runtime.cli", "tail", "--nats-url",
                           f"nats://127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "cannot connect to nats://127.0.0.1:" in proc.stderr and proc.stdout == ""


def test_tail_without_a_url_tails_the_nats_of_the_up_running_on_the_data_dir(isolated_settings):
    """No --nats-url, no NATS_URL: the endpoints file of a running `up` (here: this test's process
    stands in for it) names the NATS and the subject prefix; tail says which server it took."""
    import os
    import shutil

    from adrstack.runtime import endpoints
    from tests.helpers import temp_dir

    s = isolated_settings
    data_dir = temp_dir("tail")
    try:
        endpoints.write(data_dir, {"nats_url": s.nats_url, "subject_prefix": s.subject_prefix})
        env = {k: v for k, v in os.environ.items()
               if k not in ("NATS_URL", "ADRSTACK_NATS_URL", "ADRSTACK_SUBJECT_PREFIX")}
        proc = subprocess.Popen([sys.executable, "-m", "adrstack.runtime.cli", "tail", "--data-dir", str(data_dir)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = Output(proc)
        try:
            said = proc.stderr.readline().decode()
            assert said.startswith(f"adrstack tail: {s.subject_prefix}.> on {s.nats_url} (the NATS of the "
                                   f"adrstack up running on {data_dir}, pid {os.getpid()})"), said
            publish(s, (s.subjects.seen("ven-f"), VenSeen(ven_id="ven-f").to_bytes()))
            wait_until(lambda: out.lines, message="the fact tailed")
        finally:
            assert stop(proc, signal.SIGTERM) == 0
        assert out.lines[0].startswith(s.subjects.seen("ven-f") + " ")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def test_the_file_of_an_up_that_is_gone_is_ignored():
    import os
    import shutil

    from adrstack.runtime import endpoints
    from adrstack.runtime.tail import resolve
    from tests.helpers import temp_dir

    data_dir = temp_dir("tail")
    try:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait(30)
        endpoints.write(data_dir, {"nats_url": "nats://127.0.0.1:1", "subject_prefix": "p"})
        found = endpoints.path(data_dir)
        found.write_text(found.read_text().replace(f'"pid": {os.getpid()}', f'"pid": {gone.pid}'))
        target = resolve(None, None, None, data_dir)
        assert (target.nats_url, target.subject) == ("nats://127.0.0.1:4222", "openadr.>")
        assert target.origin.startswith(f"the default: no adrstack up runs on {data_dir}")
        assert resolve("nats://h:2", "NATS_URL", None, data_dir).origin == "from NATS_URL"
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
