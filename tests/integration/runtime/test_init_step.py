"""The stream and the buckets have one owner: `adrstack migrate` creates them (and brings the
stream to its configured retention); a service only binds, and without them it stops at once
with a message naming the missing piece and the command to run."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import nats
import pytest

from adrstack.shared.settings import CommonSettings
from tests.conftest import _cleanup_nats, unique_names
from tests.helpers import STACK_NAME_FIELDS, TEST_STREAM_LIMITS, stack_env


@pytest.fixture
def fresh_names(infra, fresh_database):
    """A stack's names that nothing has created on NATS yet (removed afterwards)."""
    names = unique_names()
    settings = CommonSettings(nats_url=infra.nats_url, database_url=fresh_database,
                              **{k: v for k, v in names.items() if k in STACK_NAME_FIELDS}, **TEST_STREAM_LIMITS)
    yield settings
    _cleanup_nats(settings)


def run(argv: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=timeout)


def stream_and_buckets(settings: CommonSettings) -> tuple[dict, list[str]]:
    async def look():
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        try:
            info = await js.stream_info(settings.stream_name)
            dead = await js.stream_info(settings.dead_letter_stream)
            assert dead.config.subjects == [settings.subjects.all_dead_letters]
            present = []
            for name in STACK_NAME_FIELDS:
                if name.endswith("_bucket"):
                    try:
                        await js.key_value(getattr(settings, name))
                        present.append(name)
                    except nats.js.errors.BucketNotFoundError:
                        pass
            return {"max_age": info.config.max_age, "max_bytes": info.config.max_bytes,
                    "dead_letter_max_age": dead.config.max_age}, present
        finally:
            await nc.close()

    return asyncio.run(look())


@pytest.mark.parametrize("service", ["adrstack.gateway", "adrstack.scheduler", "adrstack.telemetry"])
def test_a_service_without_the_init_step_stops_and_says_what_to_run(fresh_names, service):
    done = run(["-m", service], stack_env(fresh_names, ADRSTACK_VTN_PORT="0", ADRSTACK_VTN_HOST="127.0.0.1"))
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{fresh_names.stream_name} does not exist" in done.stderr and "adrstack migrate" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_creates_the_stream_and_buckets_then_services_bind(fresh_names):
    env = stack_env(fresh_names, ADRSTACK_STREAM_MAX_AGE="P2D", ADRSTACK_DEAD_LETTER_MAX_AGE="P40D")
    done = run(["-m", "adrstack.runtime.cli", "migrate"], env)
    assert done.returncode == 0, done.stderr
    assert f"has the stream {fresh_names.stream_name}" in done.stdout and "created:" in done.stdout
    config, present = stream_and_buckets(fresh_names)
    assert config["max_age"] == 2 * 86400
    assert config["dead_letter_max_age"] == 40 * 86400  # its own retention
    assert present == [n for n in STACK_NAME_FIELDS if n.endswith("_bucket")]
    # Again: nothing new, and a changed retention is applied to the stream.
    again = run(["-m", "adrstack.runtime.cli", "migrate"], {**env, "ADRSTACK_STREAM_MAX_AGE": "P3D"})
    assert again.returncode == 0 and "created: nothing new" in again.stdout, again.stdout + again.stderr
    assert stream_and_buckets(fresh_names)[0]["max_age"] == 3 * 86400
