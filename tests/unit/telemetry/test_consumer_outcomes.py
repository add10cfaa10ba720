"""How a batch is settled: acks only after a commit, nak on transient errors, term on bad data.

The NATS messages and the database write are faked here; the integration tests use real ones.
"""

from __future__ import annotations

import asyncio

import psycopg

from adrstack.shared.messages import VenSeen
from adrstack.telemetry.consumer import TelemetryConsumer
from adrstack.telemetry.settings import TelemetrySettings


class FakeMsg:
    def __init__(self, subject: str, data: bytes):
        self.subject = subject
        self.data = data
        self.outcome: list[str] = []

    async def ack(self):
        self.outcome.append("ack")

    async def term(self):
        self.outcome.append("term")

    async def nak(self, delay=None):
        self.outcome.append(f"nak:{delay}")

    async def in_progress(self):
        self.outcome.append("wip")


def consumer(write, events: list[str] | None = None) -> TelemetryConsumer:
    settings = TelemetrySettings(subject_prefix="t", nak_delay_seconds=3, retry_initial_seconds=0.01)

    async def after_commit(msgs):
        if events is not None:
            events.append(f"commit:{len(msgs)}")

    c = TelemetryConsumer(settings, after_commit=after_commit)
    c._write = write  # the database is not under test here
    return c


def seen(ven="v1") -> FakeMsg:
    return FakeMsg(f"t.ven.{ven}.seen", VenSeen(ven_id=ven).to_bytes())


async def test_batch_is_acked_after_the_commit():
    order: list[str] = []

    async def write(batch):
        order.append("write")

    msgs = [seen(), seen("v2")]
    c = consumer(write, order)
    await c.process(msgs)
    assert order == ["write", "commit:2"]
    assert [m.outcome for m in msgs] == [["ack"], ["ack"]]


async def test_garbage_is_terminated_and_the_rest_stored():
    written = []

    async def write(batch):
        written.append(batch)

    garbage = FakeMsg("t.ven.v1.seen", b"\x00garbage")
    good = seen()
    await consumer(write).process([garbage, good])
    assert garbage.outcome == ["term"] and good.outcome == ["ack"]
    assert list(written[0].seen) == ["v1"]


async def test_database_outage_holds_the_batch_until_it_commits():
    attempts = []

    async def write(batch):
        attempts.append(1)
        if len(attempts) < 3:
            raise psycopg.OperationalError("connection refused")

    msgs = [seen(), seen("v2")]
    await consumer(write).process(msgs, asyncio.Event())
    # Two failed writes kept the messages alive (no nak: it would count a delivery), then one ack.
    assert len(attempts) == 3
    assert [m.outcome for m in msgs] == [["wip", "wip", "ack"], ["wip", "wip", "ack"]]


async def test_stopping_during_an_outage_naks_the_held_batch():
    stop = asyncio.Event()

    async def write(batch):
        stop.set()
        raise psycopg.OperationalError("connection lost")

    msgs = [seen()]
    await consumer(write).process(msgs, stop)
    assert msgs[0].outcome == ["nak:3.0"]


async def test_transient_database_error_without_a_run_loop_naks_with_delay_and_never_acks():
    async def write(batch):
        raise psycopg.OperationalError("connection lost")

    msgs = [seen(), seen("v2")]
    await consumer(write).process(msgs)
    assert [m.outcome for m in msgs] == [["nak:3.0"], ["nak:3.0"]]


async def test_data_the_database_refuses_is_terminated_alone():
    async def write(batch):
        if "bad" in batch.seen:
            raise psycopg.errors.DataError("value out of range")

    bad, good = seen("bad"), seen("good")
    await consumer(write).process([bad, good])
    assert bad.outcome == ["term"] and good.outcome == ["ack"]
