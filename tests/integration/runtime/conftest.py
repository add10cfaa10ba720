"""The reference VTN (plain openleadr) the simulator tests run their VENs against."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from openleadr import OpenADRServer

from adrstack.runtime.ports import free_port


class ReferenceVtn:
    """Just enough VTN to watch what the simulated VENs do."""

    def __init__(self, port: int) -> None:
        self.names: dict[str, str] = {}  # ven_id -> ven_name
        self.described: dict[str, tuple] = {}  # ven_id -> (resource_id, measurement, unit)
        self.readings: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        self.opts: dict[str, str] = {}  # event_id -> opt type
        self.server = OpenADRServer(vtn_id="REFVTN", http_host="127.0.0.1", http_port=port,
                                    requested_poll_freq=timedelta(seconds=1))
        self.server.add_handler("on_create_party_registration", self.on_create_party_registration)
        self.server.add_handler("on_register_report", self.on_register_report)

    async def on_create_party_registration(self, info):
        ven_id = f"ven-{info['ven_name']}"
        self.names[ven_id] = info["ven_name"]
        return ven_id, f"reg-{info['ven_name']}"

    async def on_register_report(self, ven_id, resource_id, measurement, unit, scale,
                                 min_sampling_interval, max_sampling_interval):
        self.described[ven_id] = (resource_id, measurement, unit)

        async def on_data(data):
            self.readings[ven_id].extend(data)

        return on_data, min_sampling_interval

    def on_opt(self, ven_id, event_id, opt_type):
        self.opts[event_id] = opt_type


@pytest.fixture
async def vtn():
    v = ReferenceVtn(free_port())
    await v.server.run()
    try:
        yield v
    finally:
        await v.server.stop()
