"""Dead letters: the messages telemetry gives up on, copied to the dead-letter stream with why.

Two ways in. A message no retry can store (invalid, or refused by the database) is copied
before it is terminated; if the copy cannot be stored, the message is not terminated but
redelivered later, so nothing is dropped unseen. A message delivered ``max_deliver`` times
without an ack (a telemetry that crashes on it, say) is dropped by JetStream itself, which says
so only in an advisory: we listen for it and copy the original, fetched by its sequence.

Every copy's id is (stream, sequence): a copy made twice (a retry, or every replica hearing the
same advisory) is stored once. The advisory is plain NATS, heard only by running processes; a
message can only reach max_deliver while a telemetry process is delivering it, so one is
listening unless it dies in the same instant.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import datetime

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from adrstack.shared.jetstream import bind_dead_letter_stream, publish
from adrstack.shared.messages import DeadLetter

from .settings import TelemetrySettings

log = logging.getLogger(__name__)

ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"
# Tries to store one advisory's copy before giving up on it (logged).
ADVISORY_ATTEMPTS = 5


def letter(*, subject: str, data: bytes, reason: str, stream: str, sequence: int, consumer: str,
           deliveries: int | None, published_at: datetime | None) -> DeadLetter:
    return DeadLetter(id=DeadLetter.id_for(stream, sequence), subject=subject, reason=reason[:1000],
                      stream=stream, stream_sequence=sequence, consumer=consumer, deliveries=deliveries,
                      payload_b64=base64.b64encode(data or b"").decode("ascii"), published_at=published_at)


class DeadLetters:
    def __init__(self, nc: NATS, settings: TelemetrySettings):
        self.nc = nc
        self.js = nc.jetstream()
        self.settings = settings
        self._advisories = None
        self.buried = 0  # copies stored since start (for logs and tests)

    async def start(self) -> None:
        s = self.settings
        await bind_dead_letter_stream(self.js, s)
        self._advisories = await self.nc.subscribe(
            ADVISORY.format(stream=s.stream_name, consumer=s.durable_name), cb=self._on_max_deliveries)

    async def stop(self) -> None:
        if self._advisories is not None:
            try:
                await self._advisories.unsubscribe()
            except Exception:
                pass
            self._advisories = None

    async def bury(self, msg: Msg, reason: str) -> None:
        """Copy ``msg`` to the dead-letter stream; raises if the stream did not store it."""
        md = msg.metadata
        await self._store(letter(subject=msg.subject, data=msg.data, reason=reason, stream=md.stream,
                                 sequence=md.sequence.stream, consumer=md.consumer, deliveries=md.num_delivered,
                                 published_at=md.timestamp))

    async def _store(self, dead: DeadLetter) -> None:
        await publish(self.js, self.settings.subjects.dead_letter(dead.consumer), dead)
        self.buried += 1
        log.warning("dead letter: %s seq %d (%s): %s", dead.stream, dead.stream_sequence, dead.subject, dead.reason)

    async def _on_max_deliveries(self, advisory: Msg) -> None:
        try:
            body = json.loads(advisory.data)
            stream, sequence = body["stream"], int(body["stream_seq"])
            consumer, deliveries = body.get("consumer", self.settings.durable_name), body.get("deliveries")
        except (ValueError, KeyError, TypeError) as e:
            log.error("unreadable max-deliveries advisory (%r): %r", e, advisory.data[:200])
            return
        reason = f"not acknowledged after {deliveries} deliveries (max_deliver); JetStream stopped retrying it"
        delay = 0.2
        for attempt in range(1, ADVISORY_ATTEMPTS + 1):
            try:
                try:
                    original = await self.js.get_msg(stream, sequence)
                    subject, data, at = original.subject or "", original.data or b"", original.time
                except NotFoundError:  # aged out of the stream meanwhile: keep the fact that it was lost
                    subject, data, at = "", b"", None
                    reason = reason.split(";")[0] + "; the message is no longer in the stream"
                await self._store(letter(subject=subject, data=data, reason=reason, stream=stream, sequence=sequence,
                                         consumer=consumer, deliveries=deliveries, published_at=at))
                return
            except Exception as e:
                if attempt == ADVISORY_ATTEMPTS:
                    log.error("could not store the dead letter of %s seq %d: %r", stream, sequence, e)
                    return
                await asyncio.sleep(delay)
                delay *= 2
