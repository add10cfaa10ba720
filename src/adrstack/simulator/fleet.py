"""N simulated VENs in one process, started together and stopped together."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .load import BuildingLoad, opts_out
from .ven import SimulatedVen

if TYPE_CHECKING:
    from .mqtt import MqttBridge

log = logging.getLogger("adrstack.simulator")


class MissingCertificates(Exception):
    pass


def build_fleet(count: int, vtn_url: str, report_interval: float = 10.0, name_prefix: str = "demo-ven",
                first_index: int = 1, cert_dir: Path | None = None, profile: str = "office",
                opt_out_rate: float = 0.0) -> list[SimulatedVen]:
    fleet = [
        SimulatedVen(index=i, vtn_url=vtn_url, building=BuildingLoad(i, profile=profile),
                     report_interval=timedelta(seconds=report_interval), name_prefix=name_prefix, cert_dir=cert_dir,
                     opts_out=opts_out(i - first_index + 1, opt_out_rate))
        for i in range(first_index, first_index + count)
    ]
    missing = [path for ven in fleet for path in ven.tls_files().values() if not Path(path).is_file()]
    if missing:
        names = " ".join(f"--ven {ven.name}" for ven in fleet)
        raise MissingCertificates(f"{len(missing)} certificate file(s) missing, e.g. {missing[0]}; "
                                  f"create them with: adrstack certs --dir {cert_dir} {names}")
    return fleet


def registered(fleet: list[SimulatedVen]) -> int:
    return sum(ven.client is not None for ven in fleet)


def summary(fleet: list[SimulatedVen]) -> str:
    events = set().union(*(v.opted_in | v.opted_out for v in fleet)) if fleet else set()
    return (f"simulator summary: {registered(fleet)}/{len(fleet)} VEN(s) registered, "
            f"{sum(v.readings_sent for v in fleet)} reading(s) sent, {len(events)} event(s), "
            f"{sum(len(v.opted_in) for v in fleet)} opt-in(s), {sum(len(v.opted_out) for v in fleet)} opt-out(s)")


async def report_progress(fleet: list[SimulatedVen], stop: asyncio.Event, every: float = 0.2) -> None:
    """One line each time another VEN registers, until all have (registration retries can take a while)."""
    shown = -1
    while not stop.is_set():
        now = registered(fleet)
        if now != shown:
            print(f"simulator: {now}/{len(fleet)} VEN(s) registered", flush=True)
            shown = now
        if now == len(fleet):
            return
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


async def run_fleet(fleet: list[SimulatedVen], stop: asyncio.Event, bridge: "MqttBridge | None" = None) -> None:
    log.info("simulating %d VEN(s) against %s", len(fleet), fleet[0].vtn_url if fleet else "-")
    bridging = None
    if bridge is not None:
        bridging = asyncio.create_task(bridge.run(stop))
        await bridge.ready.wait()  # so that no event arrives before it can be passed on
        for ven in fleet:
            ven.bridge = bridge
    progress = asyncio.create_task(report_progress(fleet, stop))
    tasks = [asyncio.create_task(ven.run(stop), name=ven.name) for ven in fleet]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    progress.cancel()
    if bridging is not None:
        await bridging
    for ven, result in zip(fleet, results):
        if isinstance(result, BaseException):
            log.error("%s stopped with %s: %s", ven.name, type(result).__name__, result)
    print(summary(fleet), flush=True)
    log.info("simulator stopped")
