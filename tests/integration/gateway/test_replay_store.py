"""The replay-nonce store against a real NATS: once per nonce, across instances, restarts and TTL;
refusal (never acceptance) when NATS cannot answer."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import nats
import pytest

from adrstack.gateway.replay import NonceStore, NonceStoreUnavailable, OutsideWindow, Replayed
from adrstack.runtime.embedded import find_nats_server
from adrstack.shared import jetstream
from tests.helpers import eventually, temp_dir, wait_until

WINDOW = 300.0
SIGNER = "AB:CD:EF:01:23:45:67:89:AB:CD"
OTHER_SIGNER = "01:23:45:67:89:AB:CD:EF:01:23"


def now() -> datetime:
    return datetime.now(timezone.utc)


def nonce() -> str:
    return secrets.token_hex(16)


async def bound(nc, bucket: str, window: float, **kwargs) -> NonceStore:
    """The store over ``bucket``, created first as the init step (`adrstack migrate`) creates it."""
    await jetstream.ensure_kv(nc.jetstream(), bucket, ttl=2 * window)
    return await NonceStore.bind(nc, bucket, window, **kwargs)


@pytest.fixture
async def bucket(infra):
    """A nonce bucket of this test's own, deleted afterwards."""
    name = f"t{secrets.token_hex(4)}-nonces"
    yield name
    nc = await nats.connect(infra.nats_url)
    try:
        await nc.jetstream().delete_key_value(name)
    except nats.js.errors.NotFoundError:
        pass  # never created, or deleted by the test
    finally:
        await nc.close()


@pytest.fixture
async def connect(infra):
    """Opens NATS connections (one per replica or restart); closes those still open at the end."""
    opened = []

    async def open_one(url: str | None = None, **kwargs):
        nc = await nats.connect(url or infra.nats_url, **kwargs)
        opened.append(nc)
        return nc

    yield open_one
    for nc in opened:
        if not nc.is_closed:
            await nc.close()


async def test_a_nonce_is_accepted_once_per_signer(connect, bucket):
    store = await bound(await connect(), bucket, WINDOW)
    n = nonce()
    await store.check(SIGNER, now(), n)
    with pytest.raises(Replayed):
        await store.check(SIGNER, now(), n)
    with pytest.raises(Replayed):  # a new timestamp does not make an old nonce new
        await store.check(SIGNER, now() + timedelta(seconds=1), n)
    await store.check(OTHER_SIGNER, now(), n)  # nonces are the signer's own
    await store.check(SIGNER, now(), nonce())


async def test_replicas_share_the_nonces(connect, bucket):
    first = await bound(await connect(), bucket, WINDOW)
    second = await bound(await connect(), bucket, WINDOW)
    n, m = nonce(), nonce()
    await first.check(SIGNER, now(), n)
    with pytest.raises(Replayed):
        await second.check(SIGNER, now(), n)
    await second.check(SIGNER, now(), m)
    with pytest.raises(Replayed):
        await first.check(SIGNER, now(), m)


async def test_nonces_outlive_a_restart(connect, bucket):
    nc = await connect()
    before = await bound(nc, bucket, WINDOW)
    n = nonce()
    await before.check(SIGNER, now(), n)
    await nc.close()

    after = await bound(await connect(), bucket, WINDOW)
    with pytest.raises(Replayed):
        await after.check(SIGNER, now(), n)


async def test_timestamps_outside_the_window_are_refused_on_both_sides(connect, bucket):
    store = await bound(await connect(), bucket, WINDOW)
    margin = timedelta(seconds=5)
    for timestamp in (now() - timedelta(seconds=WINDOW) - margin, now() + timedelta(seconds=WINDOW) + margin):
        with pytest.raises(OutsideWindow):
            await store.check(SIGNER, timestamp, nonce())
    # Just inside, both sides: accepted (clocks differ both ways).
    await store.check(SIGNER, now() - timedelta(seconds=WINDOW) + margin, nonce())
    await store.check(SIGNER, now() + timedelta(seconds=WINDOW) - margin, nonce())


async def test_a_refused_timestamp_does_not_use_up_the_nonce(connect, bucket):
    store = await bound(await connect(), bucket, WINDOW)
    n = nonce()
    with pytest.raises(OutsideWindow):
        await store.check(SIGNER, now() - timedelta(seconds=2 * WINDOW), n)
    await store.check(SIGNER, now(), n)


async def test_nonces_expire_after_twice_the_window(connect, bucket):
    window = 0.5
    store = await bound(await connect(), bucket, window)
    assert (await store.kv.status()).ttl == pytest.approx(2 * window)
    n = nonce()
    await store.check(SIGNER, now(), n)
    with pytest.raises(Replayed):
        await store.check(SIGNER, now(), n)

    async def bucket_empty():
        return (await store.kv.status()).values == 0

    await eventually(bucket_empty, timeout=15, message="the nonce expired from the bucket")
    await store.check(SIGNER, now(), n)  # forgotten; the window check is what refuses it from now on


async def test_a_bucket_keeping_nonces_too_briefly_is_refused(connect, bucket):
    nc = await connect()
    await jetstream.ensure_kv(nc.jetstream(), bucket, ttl=WINDOW)  # half of what the window needs
    with pytest.raises(ValueError, match="TTL"):
        await NonceStore.bind(nc, bucket, WINDOW)


async def test_a_bucket_nobody_created_is_a_clear_start_up_error(connect, bucket):
    """The gateway binds to the nonces bucket; `adrstack migrate` creates it."""
    with pytest.raises(jetstream.MissingInfrastructure, match="adrstack migrate"):
        await NonceStore.bind(await connect(), bucket, WINDOW)


async def test_a_missing_bucket_is_unavailable_not_acceptance(connect, bucket):
    nc = await connect()
    store = await bound(nc, bucket, WINDOW)
    await nc.jetstream().delete_key_value(bucket)
    with pytest.raises(NonceStoreUnavailable):
        await store.check(SIGNER, now(), nonce())


@pytest.fixture
def own_nats():
    """A nats-server of this test's own (it gets stopped), on a port it picks itself."""
    tmp = temp_dir("replay")
    proc = subprocess.Popen([find_nats_server(), "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", str(tmp / "js"),
                             "--ports_file_dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ports = wait_until(lambda: list(tmp.glob("*.ports")), timeout=15, message="nats-server wrote its ports")
        url = wait_until(lambda: json.loads(ports[0].read_text())["nats"][0], timeout=5,
                         message="the ports file is complete")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


async def test_nats_down_is_unavailable_never_acceptance(connect, own_nats):
    url, proc = own_nats
    # Like the gateway's connection: it keeps reconnecting rather than giving up.
    nc = await connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    store = await bound(nc, "nonces", WINDOW, timeout=1.0)
    seen = nonce()
    await store.check(SIGNER, now(), seen)

    proc.terminate()
    proc.wait(15)
    for n in (nonce(), seen):  # neither a new nonce nor a replay is decided without NATS
        with pytest.raises(NonceStoreUnavailable):
            await store.check(SIGNER, now(), n)
