"""The simulator's MQTT bridge against the Mosquitto broker of the test machine (MQTT_URL, default
mqtt://127.0.0.1:1883): an event a VEN receives is published on its events topic with its answer,
and the meter value published on its meter topic is what it reports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import aiomqtt
import pytest

from tests.helpers import eventually

MQTT_URL = os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883")


@pytest.fixture
async def broker():
    url = urlparse(MQTT_URL)
    try:
        async with aiomqtt.Client(url.hostname, url.port or 1883) as client:
            yield client
    except aiomqtt.MqttError as e:
        pytest.fail(f"no MQTT broker at {MQTT_URL}: {e}")


async def test_events_go_out_and_meter_values_come_in_over_mqtt(vtn, broker):
    prefix = f"adrstack-test/{uuid.uuid4().hex[:8]}"
    await broker.subscribe(f"{prefix}/+/events", qos=1)
    received: list[tuple[str, dict]] = []

    async def collect():
        async for message in broker.messages:
            received.append((message.topic.value, json.loads(message.payload)))

    collector = asyncio.create_task(collect())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adrstack.runtime.cli", "simulate", "--vens", "1", "--report-interval", "1",
        "--vtn-url", f"http://127.0.0.1:{vtn.server.http_port}/OpenADR2/Simple/2.0b",
        "--mqtt-url", MQTT_URL, "--mqtt-topic", prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        await eventually(lambda: vtn.readings.get("ven-demo-ven-1"), timeout=30, message="modelled readings")

        # The building's meter: until the bridge has subscribed, a value may be missed, so send it again.
        async def metered():
            await broker.publish(f"{prefix}/demo-ven-1/meter", "12345.6", qos=1)
            return any(w == 12345.6 for _, w in vtn.readings["ven-demo-ven-1"])

        await eventually(metered, timeout=30, interval=0.5, message="the meter value reported")

        start = datetime.now(timezone.utc) + timedelta(minutes=5)
        vtn.server.add_event("ven-demo-ven-1", "simple", "level",
                             [{"dtstart": start, "duration": timedelta(minutes=10), "signal_payload": 2.0}],
                             callback=vtn.on_opt, event_id="mqtt-evt")
        await eventually(lambda: vtn.opts.get("mqtt-evt") == "optIn", timeout=30, message="optIn")
        topic, event = await eventually(lambda: next(iter(received), None), timeout=15, message="the event on MQTT")
        assert topic == f"{prefix}/demo-ven-1/events"
        assert (event["eventId"], event["optType"]) == ("mqtt-evt", "optIn")
        [shed] = event["shed"]
        # Level 2 sheds a quarter (load.SIMPLE_SHED); the XML carries the start to the second.
        assert abs(datetime.fromisoformat(shed["start"]) - start) < timedelta(seconds=1)
        assert datetime.fromisoformat(shed["end"]) - datetime.fromisoformat(shed["start"]) == timedelta(minutes=10)
        assert (shed["share"], shed["rampUpSeconds"]) == (0.25, 0.0)
    finally:
        collector.cancel()
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        out = (await asyncio.wait_for(proc.communicate(), 20))[0].decode()
    assert proc.returncode == 0, out
    assert "MQTT bridge on" in out and "Traceback" not in out, out
