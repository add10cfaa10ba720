"""A real Gateway in-process on a free port, against the test's real NATS (isolated names)."""

from __future__ import annotations

import json
import socket

import nats
import pytest
from openleadr import OpenADRClient

from adrstack.gateway.app import Gateway
from adrstack.gateway.settings import GatewaySettings
from adrstack.shared import jetstream
from tests.integration.gateway.push_ven import PushVen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gateway_settings(isolated_settings) -> GatewaySettings:
    return GatewaySettings(
        **isolated_settings.model_dump(),
        vtn_host="127.0.0.1",
        vtn_port=free_port(),
        poll_interval=1.0,
        report_interval=1.0,
    )


@pytest.fixture
async def gateway(gateway_settings):
    gw = Gateway(gateway_settings)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


class Nats:
    """The test's own view of NATS: what was stored in the stream and the KV buckets."""

    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self.subjects = settings.subjects

    async def __aenter__(self):
        self.nc = await nats.connect(self.settings.nats_url)
        self.js = self.nc.jetstream()
        await jetstream.ensure_stream(self.js, self.settings)
        self.vens = await jetstream.ensure_kv(self.js, self.settings.vens_bucket)
        self.events = await jetstream.ensure_kv(self.js, self.settings.events_bucket)
        return self

    async def __aexit__(self, *exc):
        await self.nc.close()

    async def stored(self, subject: str) -> list[dict]:
        """Every message the stream holds on ``subject`` (wildcards allowed) now, oldest first: the
        stream says how many there are, and exactly those are read (no wait for a quiet spell)."""
        info = await self.js.stream_info(self.settings.stream_name, subjects_filter=subject)
        n = sum((info.state.subjects or {}).values())
        if n == 0:
            return []
        sub = await self.js.subscribe(subject, stream=self.settings.stream_name, ordered_consumer=True)
        out = []
        try:
            while len(out) < n:
                msg = await sub.next_msg(timeout=5)
                out.append(json.loads(msg.data))
        finally:
            await sub.unsubscribe()
        return out

    async def last(self, subject: str) -> dict | None:
        try:
            msg = await self.js.get_last_msg(self.settings.stream_name, subject)
        except nats.js.errors.NotFoundError:
            return None
        return json.loads(msg.data)

    async def kv_json(self, key: str, bucket: str = "vens") -> dict | None:
        kv = self.vens if bucket == "vens" else self.events
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        return json.loads(entry.value)


@pytest.fixture
async def bus(gateway_settings):
    async with Nats(gateway_settings) as n:
        yield n


@pytest.fixture
async def vens():
    """Creates real openleadr VENs and stops every one of them after the test."""
    made: list[OpenADRClient] = []

    def make(name: str, url: str, **kwargs) -> OpenADRClient:
        client = OpenADRClient(ven_name=name, vtn_url=url, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        if client.client_session is not None:
            try:
                await client.stop()
            except Exception:
                await client.client_session.close()


@pytest.fixture
def fast_push(gateway_settings):
    """Push retries in tenths of a second."""
    return gateway_settings.model_copy(update={"push_backoff_initial": 0.05, "push_backoff_max": 0.2,
                                               "push_timeout": 5.0})


@pytest.fixture
async def fast_gateway(fast_push):
    gw = Gateway(fast_push)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest.fixture
async def push_ven():
    made: list[PushVen] = []

    async def make(kind: type[PushVen] = PushVen, **kwargs) -> tuple[PushVen, str]:
        ven = kind(**kwargs)
        made.append(ven)
        return ven, await ven.start()

    yield make
    for ven in made:
        await ven.stop()
