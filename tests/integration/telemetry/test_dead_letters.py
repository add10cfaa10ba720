"""Messages telemetry gives up on end in the dead-letter stream, with why, and are not retried:
an invalid fact at once, a fact never acknowledged once JetStream stops at max_deliver."""

from __future__ import annotations

import base64
import json

import nats
import pytest

from adrstack.shared.messages import DeadLetter, VenSeen, decode
from adrstack.telemetry.consumer import TelemetryConsumer
from tests.helpers import eventually


async def dead_letters(harness) -> list[DeadLetter]:
    """Every message of the dead-letter stream, oldest first."""
    js, stream = harness.js, harness.settings.dead_letter_stream
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
        out.append(decode(DeadLetter, (await js.get_msg(stream, seq)).data))
    return out


async def test_an_invalid_fact_is_dead_lettered_once_and_not_retried(harness):
    s = harness.subjects
    garbage = b'{"ven_id": "ven-1", "occurred_at": "not a time"}'
    ack = await harness.js.publish(s.seen("ven-1"), garbage, headers={"Nats-Msg-Id": "garbage-1"})
    await harness.publish(s.seen("ven-2"), VenSeen(ven_id="ven-2"))
    consumer, _ = await harness.start_consumer()

    [letter] = await eventually(lambda: dead_letters(harness), 15, message="a dead letter")
    assert (letter.subject, letter.stream, letter.stream_sequence) == (s.seen("ven-1"), harness.settings.stream_name,
                                                                       ack.seq)
    assert letter.consumer == harness.settings.durable_name and letter.deliveries == 1
    assert letter.reason.startswith("invalid:") and "validation error" in letter.reason
    assert base64.b64decode(letter.payload_b64) == garbage
    # Terminated, not retried: nothing pending or redelivered, and the fact behind it was stored.
    await eventually(lambda: consumer.stored == 1, message="the valid fact stored")
    info = await harness.consumer_info()
    assert (info.num_ack_pending, info.num_redelivered) == (0, 0)
    assert info.ack_floor.stream_seq == ack.seq + 1
    assert len(await dead_letters(harness)) == 1


@pytest.fixture
async def listening(harness):
    """Telemetry bound to the stream and listening for advisories, but fetching nothing itself:
    the test plays the telemetry process that takes a message and dies before its ack."""
    settings = harness.settings_with(max_deliver=2, ack_wait_seconds=30.0)
    # Two replicas: both hear the advisory, the copy's id makes it one dead letter.
    replicas = [TelemetryConsumer(settings), TelemetryConsumer(settings)]
    for consumer in replicas:
        await consumer.start()
    try:
        yield replicas[0]
    finally:
        for consumer in replicas:
            await consumer.stop()


async def test_a_fact_never_acknowledged_is_dead_lettered_at_max_deliver(harness, listening):
    s = harness.subjects
    ack = await harness.js.publish(s.seen("ven-1"), VenSeen(ven_id="ven-1").to_bytes())
    sub = await harness.js.pull_subscribe_bind(durable=listening.settings.durable_name,
                                               stream=harness.settings.stream_name)
    for delivery in (1, 2):
        [msg] = await sub.fetch(1, timeout=5)
        assert (msg.metadata.sequence.stream, msg.metadata.num_delivered) == (ack.seq, delivery)
        await msg.nak()  # as a crash before the ack would, only sooner than ack_wait

    async def given_up() -> list[DeadLetter]:
        # A pull request is what makes the server look for the next delivery, find the message
        # past max_deliver and say so in the advisory.
        with pytest.raises(nats.errors.TimeoutError):
            await sub.fetch(1, timeout=0.3)
        return await dead_letters(harness)

    [letter] = await eventually(given_up, 15, message="the max-deliveries dead letter")
    assert (letter.subject, letter.stream_sequence, letter.deliveries) == (s.seen("ven-1"), ack.seq, 2)
    assert "max_deliver" in letter.reason
    assert json.loads(base64.b64decode(letter.payload_b64))["ven_id"] == "ven-1"
    assert letter.id == DeadLetter.id_for(harness.settings.stream_name, ack.seq)
    # Never delivered again.
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=1.0)
    assert (await harness.consumer_info(listening.settings.durable_name)).num_ack_pending == 0
    assert len(await dead_letters(harness)) == 1
