"""Restart delays, exit descriptions, and what `up` tells children and users (no processes here)."""

from __future__ import annotations

import sys
from pathlib import Path

from adrstack.runtime.options import UpOptions
from adrstack.runtime.supervisor import Backoff, describe_exit
from adrstack.runtime.up import banner, child_env, display_host, local_host, service_argv, simulator_argv, SERVICES

OPTS = UpOptions(vtn_port=8081, api_port=8001, data_dir=Path("/d"), demo=3, poll_interval=10.0, host="0.0.0.0")


def test_backoff_doubles_up_to_a_ceiling():
    b = Backoff(initial=1, factor=2, maximum=8, stable_after=30)
    assert [b.next_delay(0.1) for _ in range(6)] == [1, 2, 4, 8, 8, 8]


def test_backoff_resets_after_a_stable_run():
    b = Backoff(initial=1, factor=2, maximum=30, stable_after=30)
    b.next_delay(0), b.next_delay(0), b.next_delay(0)
    assert b.next_delay(31) == 1
    assert b.next_delay(0) == 2


def test_exit_descriptions():
    assert describe_exit(3) == "code 3"
    assert describe_exit(-9) == "code -9 (SIGKILL)"
    assert describe_exit(None) == "an error before it started"


def test_children_get_urls_ports_and_poll_interval_and_keep_the_rest():
    env = child_env(OPTS, {"ADRSTACK_SUBJECT_PREFIX": "x", "PATH": "/bin"}, "nats://h:1", "postgresql://p@h:2/d")
    assert env["NATS_URL"] == "nats://h:1" and env["DATABASE_URL"] == "postgresql://p@h:2/d"
    assert (env["ADRSTACK_VTN_HOST"], env["ADRSTACK_VTN_PORT"]) == ("0.0.0.0", "8081")
    assert (env["ADRSTACK_API_HOST"], env["ADRSTACK_API_PORT"]) == ("0.0.0.0", "8001")
    assert env["ADRSTACK_POLL_INTERVAL"] == "10"
    assert env["ADRSTACK_SUBJECT_PREFIX"] == "x" and env["PATH"] == "/bin"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_command_lines_name_the_service():
    assert [service_argv(s)[1:] for s in SERVICES] == [
        ["-m", "adrstack.gateway"], ["-m", "adrstack.scheduler"], ["-m", "adrstack.telemetry"], ["-m", "adrstack.api"]]
    assert service_argv(SERVICES[0])[0] == sys.executable
    assert simulator_argv(OPTS)[1:] == ["-m", "adrstack.simulator", "--vens", "3", "--vtn-url",
                                        "http://127.0.0.1:8081/OpenADR2/Simple/2.0b", "--name-prefix", "demo-ven",
                                        "--opt-out-rate", "0.34"]


def test_banner_has_every_url_and_hides_passwords():
    text = banner(OPTS, "nats://127.0.0.1:4222", "postgresql://u:secret@h:5432/adrstack")
    assert "http://localhost:8081/OpenADR2/Simple/2.0b" in text
    assert "http://localhost:8001/graphql" in text and "http://localhost:8001/" in text
    assert "nats://127.0.0.1:4222" in text and "postgresql://u:***@h:5432/adrstack" in text
    assert "secret" not in text


def test_banner_says_how_to_tail_the_nats_it_uses():
    lines = banner(OPTS, "nats://127.0.0.1:4333", "postgresql://p@h/d", subject_prefix="t1").splitlines()
    assert "  Tail       nats sub -s nats://127.0.0.1:4333 't1.>'" in lines
    assert any(line.split()[:5] == ["adrstack", "tail", "--nats-url", "nats://127.0.0.1:4333", "'t1.>'"]
               for line in lines)


def test_hosts():
    assert local_host("0.0.0.0") == "127.0.0.1" and display_host("0.0.0.0") == "localhost"
    assert local_host("10.1.2.3") == display_host("10.1.2.3") == "10.1.2.3"
    assert local_host("::1") == "[::1]"
