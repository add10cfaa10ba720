"""N simulated VENs in one process, started together and stopped together."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

from .load import BuildingLoad
from .ven import SimulatedVen

log = logging.getLogger("adrstack.simulator")


class MissingCertificates(Exception):
    pass


def build_fleet(count: int, vtn_url: str, report_interval: float = 10.0, name_prefix: str = "demo-ven",
                first_index: int = 1, cert_dir: Path | None = None) -> list[SimulatedVen]:
    fleet = [
        SimulatedVen(index=i, vtn_url=vtn_url, building=BuildingLoad(i),
                     report_interval=timedelta(seconds=report_interval), name_prefix=name_prefix, cert_dir=cert_dir)
        for i in range(first_index, first_index + count)
    ]
    missing = [path for ven in fleet for path in ven.tls_files().values() if not Path(path).is_file()]
    if missing:
        names = " ".join(f"--ven {ven.name}" for ven in fleet)
        raise MissingCertificates(f"{len(missing)} certificate file(s) missing, e.g. {missing[0]}; "
                                  f"create them with: adrstack certs --dir {cert_dir} {names}")
    return fleet


async def run_fleet(fleet: list[SimulatedVen], stop: asyncio.Event) -> None:
    log.info("simulating %d VEN(s) against %s", len(fleet), fleet[0].vtn_url if fleet else "-")
    tasks = [asyncio.create_task(ven.run(stop), name=ven.name) for ven in fleet]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for ven, result in zip(fleet, results):
        if isinstance(result, BaseException):
            log.error("%s stopped with %s: %s", ven.name, type(result).__name__, result)
    log.info("simulator stopped")
