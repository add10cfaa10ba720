"""Facts to JetStream without a request round trip per fact.

``js.publish`` is a NATS request: a reply inbox, a future and a timer per message, and the
caller waits for the stream's ack before the next thing it does. Here every publish is a plain
core publish with a reply subject under one wildcard subscription (``<inbox>.<token>``); the
messages of all concurrent requests leave in the client's next socket write (nats-py buffers
them), and each caller awaits only its own ``PubAck``. The VEN is still answered only once
JetStream has stored its fact: a refusal (no stream captures the subject, a stream error) or no
ack within ``timeout`` fails that caller's future, and the handler answers with an OpenADR error
so the VEN re-sends. Each fact carries its ``Nats-Msg-Id``, so a re-sent one that was in fact
stored is dropped by the stream's duplicate window.

Timeouts are swept a few times per second for all pending acks at once rather than armed per
message. After a reconnect, pending acks whose publishes may have been lost simply time out.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
SWEEP_EVERY = 0.25


class PublishFailed(RuntimeError):
    """JetStream did not confirm a fact (refused, no stream, timeout, connection closed)."""


class AckTracker:
    """Pending acks by token, failed when older than ``timeout`` (pure bookkeeping, no I/O)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.pending: dict[str, asyncio.Future] = {}
        self._deadlines: collections.deque[tuple[float, str]] = collections.deque()
        self._next = 0

    def add(self, now: float, future: asyncio.Future) -> str:
        self._next += 1
        token = format(self._next, "x")
        self.pending[token] = future
        self._deadlines.append((now + self.timeout, token))
        return token

    def resolve(self, token: str, error: str | None) -> None:
        future = self.pending.pop(token, None)
        if future is None or future.done():
            return  # timed out already (a late ack), or the caller went away
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(PublishFailed(error))

    def discard(self, token: str) -> None:
        self.pending.pop(token, None)

    def expire(self, now: float) -> int:
        """Fail every pending ack whose deadline has passed; returns how many."""
        expired = 0
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, token = deadlines.popleft()
            future = self.pending.pop(token, None)
            if future is not None and not future.done():
                future.set_exception(PublishFailed(f"no ack from JetStream within {self.timeout:g} s"))
                expired += 1
        return expired

    def fail_all(self, why: str) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(PublishFailed(why))
        self.pending.clear()
        self._deadlines.clear()


def ack_error(msg: Msg) -> str | None:
    """None if ``msg`` is a JetStream PubAck (a duplicate is stored too), else why not."""
    headers = msg.headers
    if not msg.data:
        status = headers.get("Status") if headers else None
        if status == "503":
            return "no stream captures the subject (no responders)"
        return f"empty answer from JetStream (status {status})"
    try:
        answer = json.loads(msg.data)
    except ValueError:
        return "unreadable answer from JetStream"
    if not isinstance(answer, dict):
        return "unreadable answer from JetStream"
    error = answer.get("error")
    if error is not None:
        return f"JetStream refused: {error.get('description') if isinstance(error, dict) else error}"
    if "stream" not in answer:
        return "not a JetStream ack"
    return None


class FactPublisher:
    """``await publish(subject, payload, msg_id)`` returns once JetStream has stored the fact and
    raises PublishFailed otherwise; concurrent publishes are pipelined on one connection."""

    def __init__(self, nc: NATS, timeout: float = DEFAULT_TIMEOUT):
        self.nc = nc
        self.acks = AckTracker(timeout)
        self._prefix = ""
        self._sub = None
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> None:
        inbox = self.nc.new_inbox()
        self._prefix = inbox + "."
        self._sub = await self.nc.subscribe(inbox + ".*", cb=self._on_ack)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self.acks.fail_all("the gateway is stopping")
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> None:
        if self._sub is None:
            raise PublishFailed("publisher not started")
        if not self.nc.is_connected:
            # nats-py would buffer it and send it on reconnect: the VEN, told that its fact was not
            # stored, would find it stored after all. Refused now, never sent.
            raise PublishFailed("NATS is not connected")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        token = self.acks.add(loop.time(), future)
        try:
            await self.nc.publish(subject, payload, reply=self._prefix + token, headers={"Nats-Msg-Id": msg_id})
        except Exception as e:
            self.acks.discard(token)
            raise PublishFailed(f"{type(e).__name__}: {e}") from e
        try:
            await future
        except asyncio.CancelledError:
            self.acks.discard(token)
            raise

    async def _on_ack(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix):]
        self.acks.resolve(token, ack_error(msg))

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            expired = self.acks.expire(loop.time())
            if expired:
                log.warning("%d facts not acknowledged by JetStream within %g s", expired, self.acks.timeout)
