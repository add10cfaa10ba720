"""One simulated VEN: a real ``openleadr.OpenADRClient`` reporting a building's load and opting in."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from openleadr import OpenADRClient

if TYPE_CHECKING:
    from .mqtt import MqttBridge

from .load import BuildingLoad, Segment, segments_from_event

log = logging.getLogger("adrstack.simulator")


def ven_name(index: int, name_prefix: str = "demo-ven") -> str:
    return f"{name_prefix}-{index}"


@dataclass
class SimulatedVen:
    index: int
    vtn_url: str
    building: BuildingLoad
    report_interval: timedelta = timedelta(seconds=10)
    name_prefix: str = "demo-ven"
    # <cert_dir>/<name>.crt and .key are the VEN's certificate (mutual TLS, signed messages) and
    # <cert_dir>/ca.crt the CA that issued the VTN's: what `adrstack certs --ven NAME` writes.
    cert_dir: Path | None = None
    # Answer optOut (and keep the normal load) to every event: see load.opts_out.
    opts_out: bool = False
    bridge: "MqttBridge | None" = field(default=None, repr=False)
    client: OpenADRClient | None = field(default=None, repr=False)
    opted_in: set[str] = field(default_factory=set)
    opted_out: set[str] = field(default_factory=set)
    readings_sent: int = 0

    @property
    def name(self) -> str:
        return ven_name(self.index, self.name_prefix)

    @property
    def resource_id(self) -> str:
        return f"building-{self.index}"

    def tls_files(self) -> dict[str, str]:
        if self.cert_dir is None:
            return {}
        files = {"cert": self.cert_dir / f"{self.name}.crt", "key": self.cert_dir / f"{self.name}.key",
                 "ca_file": self.cert_dir / "ca.crt"}
        return {arg: str(path) for arg, path in files.items()}

    def build_client(self) -> OpenADRClient:
        client = OpenADRClient(ven_name=self.name, vtn_url=self.vtn_url, show_fingerprint=False, **self.tls_files())
        # Fixed ids, so that a restarted simulator describes the same report, not a new one.
        client.add_report(
            callback=self.read_power,
            resource_id=self.resource_id,
            measurement="REAL_POWER",  # powerReal, itemDescription "RealPower"
            unit="W",
            data_collection_mode="incremental",
            report_specifier_id=f"{self.resource_id}-usage",
            r_id=f"{self.resource_id}-power",
            report_duration=timedelta(hours=1),
            sampling_rate=self.report_interval,
        )
        client.add_handler("on_event", self.on_event)
        client.add_handler("on_update_event", self.on_event)
        return client

    def read_power(self) -> float:
        now = datetime.now(timezone.utc)
        self.building.forget_finished(now)
        self.readings_sent += 1
        if self.bridge is not None and self.name in self.bridge.meters:
            return self.bridge.meters[self.name]
        return self.building.sample_watts(now)

    async def on_event(self, event: dict) -> str:
        opt_type = self.answer(event)
        if self.bridge is not None:
            await self.bridge.publish_event(self.name, bridged(event, opt_type))
        return opt_type

    def answer(self, event: dict) -> str:
        descriptor = event.get("event_descriptor") or {}
        event_id = str(descriptor.get("event_id"))
        if descriptor.get("event_status") == "cancelled":
            self.building.forget(event_id)
            self.opted_in.discard(event_id)
            log.info("%s: event %s cancelled; back to normal load", self.name, event_id)
            return "optIn"
        if self.opts_out:
            self.opted_out.add(event_id)
            log.info("%s: opted out of event %s; keeping the normal load", self.name, event_id)
            return "optOut"
        segments = segments_from_event(event)
        self.building.respond_to(event_id, segments)
        self.opted_in.add(event_id)
        if segments:
            deepest = max(s.shed for s in segments)
            first = min(segments, key=lambda s: s.start)
            log.info("%s: opted in to event %s; shedding up to %d%% from %s to %s%s", self.name, event_id,
                     round(deepest * 100), first.start.isoformat(timespec="seconds"),
                     max(s.end for s in segments).isoformat(timespec="seconds"),
                     f", ramping in over {int(first.ramp_up.total_seconds())}s before" if first.ramp_up else "")
        else:
            log.info("%s: opted in to event %s (no load change asked)", self.name, event_id)
        return "optIn"

    async def register(self) -> bool:
        """One registration attempt; True when the VTN accepted us and the client is running."""
        client = self.build_client()
        try:
            await client.run()
        except Exception as e:  # openleadr raises on some transport failures instead of logging them
            log.warning("%s: registration attempt failed: %s: %s", self.name, type(e).__name__, e)
        if client.registration_id:
            self.client = client
            log.info("%s: registered as ven_id %s, reporting %s (peak %.0f kW) every %ss", self.name,
                     client.ven_id, self.resource_id, self.building.peak_kw,
                     int(self.report_interval.total_seconds()))
            return True
        await _quiet_stop(client)
        return False

    async def run(self, stop: asyncio.Event, retry_max: float = 30.0) -> None:
        delay = 1.0
        while not stop.is_set() and not await self.register():
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                delay = min(retry_max, delay * 2)
        await stop.wait()
        if self.client is not None:
            await _quiet_stop(self.client)


def bridged(event: dict, opt_type: str) -> dict:
    """What the building side gets over MQTT: the event as this VEN understood it, and its answer."""
    descriptor = event.get("event_descriptor") or {}
    segments: list[Segment] = segments_from_event(event)
    return {"eventId": descriptor.get("event_id"), "status": descriptor.get("event_status"),
            "modificationNumber": descriptor.get("modification_number"), "optType": opt_type,
            "shed": [{"start": s.start.isoformat(), "end": s.end.isoformat(), "share": s.shed,
                      "rampUpSeconds": s.ramp_up.total_seconds()} for s in segments]}


async def _quiet_stop(client: OpenADRClient) -> None:
    try:
        await client.stop()
    except Exception:  # already stopped by openleadr itself (failed registration)
        pass
