"""The building side over MQTT (optional, ``pip install adrstack[mqtt]``): each simulated VEN
publishes the events it receives to ``<prefix>/<ven name>/events`` and, once a number (W) has
arrived on ``<prefix>/<ven name>/meter``, reports that instead of its modelled load — as a VEN
gateway in front of a BMS or IoT devices would."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger("adrstack.simulator")


class MqttBridge:
    def __init__(self, url: str, prefix: str) -> None:
        parsed = urlparse(url if "://" in url else f"mqtt://{url}")
        if parsed.scheme != "mqtt" or not parsed.hostname:
            raise ValueError(f"{url!r} is not mqtt://host[:port]")
        self.host, self.port = parsed.hostname, parsed.port or 1883
        self.prefix = prefix.strip("/")
        self.meters: dict[str, float] = {}  # ven name -> the last meter value, W
        self.ready = asyncio.Event()  # set once subscribed, or once it gave up
        self._client: Any = None

    def topic(self, ven_name: str, kind: str) -> str:
        return f"{self.prefix}/{ven_name}/{kind}"

    async def run(self, stop: asyncio.Event) -> None:
        import aiomqtt

        try:
            async with aiomqtt.Client(self.host, self.port) as client:
                await client.subscribe(self.topic("+", "meter"), qos=1)
                self._client = client
                self.ready.set()
                log.info("MQTT bridge on %s:%s: events to %s, meter values from %s", self.host, self.port,
                         self.topic("<ven>", "events"), self.topic("<ven>", "meter"))
                reader = asyncio.create_task(self._read(client))
                await stop.wait()
                self._client = None
                reader.cancel()
        except aiomqtt.MqttError as e:
            # The VENs run on with their modelled load: the bridge is an extra, not a dependency.
            log.error("MQTT bridge to %s:%s failed: %s; reporting the modelled load", self.host, self.port, e)
        finally:
            self._client = None
            self.ready.set()

    async def _read(self, client) -> None:
        async for message in client.messages:
            parts = message.topic.value.split("/")
            try:
                self.meters[parts[-2]] = float(message.payload)
            except (ValueError, TypeError):
                log.warning("ignoring %r on %s: not a number of W", message.payload, message.topic.value)

    async def publish_event(self, ven_name: str, event: dict[str, Any]) -> None:
        if self._client is None:
            return
        try:
            await self._client.publish(self.topic(ven_name, "events"), json.dumps(event, default=str), qos=1)
        except Exception as e:  # noqa: BLE001 - a lost broker must not fail the VEN's answer to the VTN
            log.warning("%s: could not publish event %s to MQTT: %s", ven_name, event.get("eventId"), e)
