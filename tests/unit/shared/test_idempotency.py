"""The one idempotency-key implementation (scheduler event commands, api program edits): a claim per
key, the earlier result for the same request, KeyReused for another, waiting for a concurrent claim,
taking over an abandoned one, namespaces. Against an in-memory stand-in of a KV bucket's CAS calls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from adrstack.shared.idempotency import (
    IdempotencyKeys,
    KeyReused,
    StillInProgress,
    request_digest,
    valid_key,
)


@dataclass
class _Entry:
    value: bytes
    revision: int


class MemoryKv:
    """create/get/update/delete with the compare-and-set errors of nats-py's KeyValue."""

    def __init__(self):
        self.entries: dict[str, _Entry] = {}
        self.revision = 0

    async def create(self, key: str, value: bytes) -> int:
        if key in self.entries:
            raise KeyWrongLastSequenceError()
        return self._put(key, value)

    async def get(self, key: str) -> _Entry:
        if key not in self.entries:
            raise KeyNotFoundError()
        return self.entries[key]

    async def update(self, key: str, value: bytes, last: int) -> int:
        if key not in self.entries or self.entries[key].revision != last:
            raise KeyWrongLastSequenceError()
        return self._put(key, value)

    async def delete(self, key: str, last: int | None = None) -> None:
        if last is not None and (key not in self.entries or self.entries[key].revision != last):
            raise KeyWrongLastSequenceError()
        self.entries.pop(key, None)

    def _put(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.entries[key] = _Entry(value, self.revision)
        return self.revision


def keys(kv=None, namespace: str = "program", **options) -> IdempotencyKeys:
    return IdempotencyKeys(kv or MemoryKv(), namespace, **options)


class Counter:
    def __init__(self):
        self.runs = 0

    async def __call__(self) -> str:
        self.runs += 1
        await asyncio.sleep(0.01)
        return f"result {self.runs}"


def once(k: IdempotencyKeys, key: str, run, verb: str = "update", digest: str = "d1", **kw):
    return k.once(key, verb, digest, run, encode=str, decode=str, **kw)


async def test_the_same_request_again_gets_the_earlier_result_and_runs_nothing():
    k, run = keys(), Counter()
    assert await once(k, "k1", run) == "result 1"
    assert await once(k, "k1", run) == "result 1"
    assert run.runs == 1


async def test_another_request_or_verb_with_the_key_is_key_reused():
    k, run = keys(), Counter()
    await once(k, "k1", run)
    with pytest.raises(KeyReused):
        await once(k, "k1", run, digest="d2")
    with pytest.raises(KeyReused):
        await once(k, "k1", run, verb="delete")
    assert run.runs == 1


async def test_concurrent_requests_with_one_key_run_once():
    k, run = keys(), Counter()
    results = await asyncio.gather(*(once(k, "burst", run) for _ in range(5)))
    assert results == ["result 1"] * 5 and run.runs == 1


async def test_a_result_not_kept_or_an_exception_releases_the_key():
    k, run = keys(), Counter()
    assert await once(k, "k1", run, keep=lambda r: False) == "result 1"
    assert await once(k, "k1", run) == "result 2"  # carried out again, then kept
    assert await once(k, "k1", run) == "result 2"

    async def fails() -> str:
        raise OSError("down")

    with pytest.raises(OSError):
        await once(k, "k2", fails)
    assert await once(k, "k2", run) == "result 3"


async def test_a_claim_in_progress_is_waited_for_then_reported():
    kv = MemoryKv()
    first = keys(kv, wait=0.2)
    _, revision = await first.begin("slow", "update", "d1")
    with pytest.raises(StillInProgress):
        await keys(kv, wait=0.2).begin("slow", "update", "d1")
    await first.finish("slow", "update", "d1", revision, "done")
    assert await keys(kv, wait=0.2).begin("slow", "update", "d1") == ("done", None)


async def test_an_abandoned_claim_is_taken_over():
    kv, now = MemoryKv(), [1000.0]
    dead = keys(kv, clock=lambda: now[0])
    _, old = await dead.begin("k", "update", "d1")
    now[0] += 31
    earlier, revision = await keys(kv, clock=lambda: now[0]).begin("k", "update", "d1")
    assert earlier is None and revision != old
    await dead.finish("k", "update", "d1", old, "late")  # the old claimant's result is not stored
    await keys(kv).finish("k", "update", "d1", revision, "taken over")
    assert await keys(kv).begin("k", "update", "d1") == ("taken over", None)


async def test_namespaces_keep_the_same_key_apart():
    kv, run = MemoryKv(), Counter()
    assert await once(keys(kv, "cmd"), "same", run, verb="create") == "result 1"
    assert await once(keys(kv, "program"), "same", run, verb="update") == "result 2"
    assert keys(kv, "cmd").kv_key("same") != keys(kv, "program").kv_key("same")


def test_digest_leaves_out_the_envelope_and_key_rules():
    a = request_digest("create", {"id": 1, "x": [1, 2]}, leave_out=("id",))
    assert a == request_digest("create", {"x": [1, 2], "id": 2}, leave_out=("id",))
    assert a != request_digest("modify", {"x": [1, 2]})
    assert a != request_digest("create", {"x": [2, 1]})
    assert valid_key("k" * 200) and not valid_key("k" * 201) and not valid_key("") and not valid_key("a\nb")
    assert not valid_key(7)
