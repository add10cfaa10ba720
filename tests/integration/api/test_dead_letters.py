"""deadLetters: what telemetry gave up on, read from the dead-letter stream page by page."""

from __future__ import annotations

import asyncio
import contextlib

from adrstack.telemetry.consumer import TelemetryConsumer
from adrstack.telemetry.settings import TelemetrySettings
from tests.helpers import eventually

from .helpers import gql

QUERY = """query($after: String, $limit: Int) { deadLetters(after: $after, limit: $limit) {
  cursor subject reason consumer stream streamSequence deliveries at publishedAt payloadBytes payloadExcerpt } }"""


async def test_invalid_facts_are_listed_with_subject_reason_and_payload(client, nc, api_settings):
    js = nc.jetstream()
    subjects = api_settings.subjects
    first = await js.publish(subjects.seen("ven-1"), b"not json at all", headers={"Nats-Msg-Id": "bad-1"})
    await js.publish(subjects.report_data("ven-2"), b'{"ven_id": "ven-2"}', headers={"Nats-Msg-Id": "bad-2"})
    settings = TelemetrySettings(**api_settings.model_dump(include=set(TelemetrySettings.model_fields)),
                                 fetch_timeout=0.5)
    consumer, stop = TelemetryConsumer(settings), asyncio.Event()
    await consumer.start()
    task = asyncio.create_task(consumer.run(stop))
    try:
        async def listed() -> list[dict]:
            got = (await gql(client, QUERY))["data"]["deadLetters"]
            return got if len(got) == 2 else []

        one, two = await eventually(listed, 15, message="two dead letters")
    finally:
        stop.set()
        with contextlib.suppress(BaseException):
            await task
        await consumer.stop()
    assert (one["subject"], one["streamSequence"], one["stream"]) == (subjects.seen("ven-1"), first.seq,
                                                                      api_settings.stream_name)
    assert one["payloadExcerpt"] == "not json at all" and one["payloadBytes"] == 15
    assert one["reason"].startswith("invalid:") and one["consumer"] == settings.durable_name
    assert one["deliveries"] == 1 and one["at"] and one["publishedAt"]
    assert two["subject"] == subjects.report_data("ven-2") and "validation error" in two["reason"]

    # Pages: one at a time, continued after the cursor, then nothing more.
    [page1] = (await gql(client, QUERY, {"limit": 1}))["data"]["deadLetters"]
    [page2] = (await gql(client, QUERY, {"limit": 1, "after": page1["cursor"]}))["data"]["deadLetters"]
    assert (page1["subject"], page2["subject"]) == (one["subject"], two["subject"])
    assert (await gql(client, QUERY, {"after": page2["cursor"]}))["data"]["deadLetters"] == []


async def test_a_cursor_that_is_not_one_is_invalid(client):
    for after in ("abc", "-1", "9" * 30):
        got = await gql(client, QUERY, {"after": after})
        assert got["errors"][0]["extensions"]["code"] == "INVALID", got
    got = await gql(client, QUERY, {"limit": 5000})
    assert got["errors"][0]["extensions"]["code"] == "INVALID"
