"""A KV mirror follows its bucket again as soon as NATS is back after a kill -9 of nats-server.

The restarted server has lost the watch's ephemeral consumer; nats-py would notice only after two
missed idle heartbeats (10 to 20 s after the kill), and until then the mirror (the gateway's
events, VENs, deliveries) silently misses every change. Uses a nats-server of its own.
"""

from __future__ import annotations

import shutil
import time

import nats
from nats.js.api import KeyValueConfig, StorageType

from adrstack.runtime.embedded import EmbeddedNats
from adrstack.runtime.ports import port_answers
from adrstack.shared.jetstream import connect
from adrstack.shared.kv_mirror import KvMirror
from adrstack.shared.settings import CommonSettings
from tests.helpers import eventually, temp_dir


async def test_a_mirror_sees_changes_made_right_after_nats_is_back():
    tmp = temp_dir("mirror")
    server = EmbeddedNats(tmp / "nats", preferred_port=0).start(tmp / "nats.log")
    mirror = None
    try:
        nc = await connect(CommonSettings(nats_url=server.url), name="mirror-test", reconnect_time_wait=0.2)
        kv = await nc.jetstream().create_key_value(KeyValueConfig(bucket="things", storage=StorageType.FILE))
        await kv.put("thing.a", b"1")
        mirror = KvMirror(kv, "thing.", bytes.decode)
        await mirror.start(timeout=10)
        assert dict(mirror.items()) == {"a": "1"}

        port = server.port
        server.proc.kill()
        server.proc.wait(10)
        assert not port_answers(port)
        server.preferred_port = port
        server.start(tmp / "nats.log")
        assert server.port == port
        await eventually(lambda: nc.is_connected, 10, interval=0.05, message="reconnected")

        other = await nats.connect(server.url)
        try:
            kv_other = await other.jetstream().key_value("things")
            await kv_other.put("thing.b", b"2")
            await kv_other.delete("thing.a")
            put_at = time.monotonic()
            # Well within the 10 s before nats-py would notice the lost consumer by itself.
            await eventually(lambda: dict(mirror.items()) == {"b": "2"}, 6, interval=0.05,
                             message="the mirror has the changes made after the restart")
            assert time.monotonic() - put_at < 6
        finally:
            await other.close()
    finally:
        if mirror is not None:
            await mirror.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
