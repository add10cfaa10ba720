"""The pipelined publisher's bookkeeping: one ack per fact, failures and timeouts per caller."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from adrstack.gateway.publisher import AckTracker, PublishFailed, ack_error


def msg(data: bytes, headers: dict | None = None):
    return SimpleNamespace(data=data, headers=headers)


def test_a_pub_ack_is_success_also_for_a_duplicate():
    assert ack_error(msg(json.dumps({"stream": "S", "seq": 4}).encode())) is None
    assert ack_error(msg(json.dumps({"stream": "S", "seq": 4, "duplicate": True}).encode())) is None


@pytest.mark.parametrize("answer, why", [
    (msg(b"", {"Status": "503"}), "no stream"),
    (msg(b'{"error": {"code": 503, "description": "storage failure"}}'), "storage failure"),
    (msg(b"not json"), "unreadable"),
    (msg(b"[1]"), "unreadable"),
    (msg(b'{"seq": 1}'), "not a JetStream ack"),
    (msg(b"", {"Status": "408"}), "status 408"),
])
def test_anything_else_is_a_failure(answer, why):
    assert why in ack_error(answer)


async def test_each_ack_resolves_its_own_caller():
    loop = asyncio.get_running_loop()
    acks = AckTracker(timeout=5)
    futures = [loop.create_future() for _ in range(3)]
    tokens = [acks.add(0.0, f) for f in futures]
    assert len(set(tokens)) == 3
    acks.resolve(tokens[1], None)
    acks.resolve(tokens[2], "JetStream refused: full")
    assert futures[1].result() is None
    with pytest.raises(PublishFailed, match="full"):
        futures[2].result()
    assert not futures[0].done() and list(acks.pending) == [tokens[0]]
    acks.resolve(tokens[1], None)  # a second answer for the same token changes nothing
    acks.resolve("unknown", None)


async def test_unacknowledged_publishes_time_out_in_order_and_late_acks_are_ignored():
    loop = asyncio.get_running_loop()
    acks = AckTracker(timeout=5)
    early, late = loop.create_future(), loop.create_future()
    t_early = acks.add(0.0, early)
    acks.add(3.0, late)
    assert acks.expire(4.9) == 0
    assert acks.expire(5.0) == 1
    with pytest.raises(PublishFailed, match="within 5 s"):
        early.result()
    assert not late.done()
    acks.resolve(t_early, None)  # the ack arrived after all: too late, the VEN was told to re-send
    assert acks.expire(8.0) == 1 and late.done()
    assert not acks.pending


async def test_a_caller_that_went_away_is_skipped():
    loop = asyncio.get_running_loop()
    acks = AckTracker(timeout=1)
    gone = loop.create_future()
    token = acks.add(0.0, gone)
    gone.cancel()
    acks.resolve(token, None)  # no InvalidStateError
    assert acks.expire(2.0) == 0


async def test_stopping_fails_everything_pending():
    loop = asyncio.get_running_loop()
    acks = AckTracker(timeout=1)
    futures = [loop.create_future() for _ in range(2)]
    for f in futures:
        acks.add(0.0, f)
    acks.fail_all("stopping")
    for f in futures:
        with pytest.raises(PublishFailed, match="stopping"):
            f.result()
    assert acks.expire(10.0) == 0
