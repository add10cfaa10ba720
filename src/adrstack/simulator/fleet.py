"""N simulated VENs in one process, started together and stopped together."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from .load import BuildingLoad
from .ven import SimulatedVen

log = logging.getLogger("adrstack.simulator")


def build_fleet(count: int, vtn_url: str, report_interval: float = 10.0, name_prefix: str = "demo-ven",
                first_index: int = 1) -> list[SimulatedVen]:
    return [
        SimulatedVen(index=i, vtn_url=vtn_url, building=BuildingLoad(i),
                     report_interval=timedelta(seconds=report_interval), name_prefix=name_prefix)
        for i in range(first_index, first_index + count)
    ]


async def run_fleet(fleet: list[SimulatedVen], stop: asyncio.Event) -> None:
    log.info("simulating %d VEN(s) against %s", len(fleet), fleet[0].vtn_url if fleet else "-")
    tasks = [asyncio.create_task(ven.run(stop), name=ven.name) for ven in fleet]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for ven, result in zip(fleet, results):
        if isinstance(result, BaseException):
            log.error("%s stopped with %s: %s", ven.name, type(result).__name__, result)
    log.info("simulator stopped")
