"""`adrstack simulate` as a process against a plain openleadr VTN over real HTTP: registration with
a progress line, reports, optIn and a load that drops while the event is active, optOut from the
share that opts out, and a summary when Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from datetime import datetime, timedelta, timezone

from adrstack.simulator.load import SIMPLE_SHED, BuildingLoad
from tests.helpers import eventually

COUNT = 3


async def test_simulated_fleet_registers_reports_and_sheds_load(vtn):
    proc = await asyncio.create_subprocess_exec(
        # --opt-out-rate 0.34 of 3 VENs: round(1.02) = 1 opts out, demo-ven-2 (load.opts_out).
        sys.executable, "-m", "adrstack.runtime.cli", "simulate", "--vens", str(COUNT), "--report-interval", "1",
        "--opt-out-rate", "0.34",
        "--vtn-url", f"http://127.0.0.1:{vtn.server.http_port}/OpenADR2/Simple/2.0b",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await eventually(lambda: len(vtn.names) == COUNT, timeout=30, message="all VENs registered")
        assert sorted(vtn.names.values()) == [f"demo-ven-{i}" for i in range(1, COUNT + 1)]
        await eventually(lambda: len(vtn.described) == COUNT, timeout=30, message="all reports registered")
        assert vtn.described["ven-demo-ven-2"] == ("building-2", "RealPower", "W")

        await eventually(lambda: all(len(vtn.readings[v]) >= 3 for v in vtn.names), timeout=30,
                         message="three readings from every VEN")
        building = BuildingLoad(1)  # the simulator picks each building's peak reproducibly from its index
        for at, watts in vtn.readings["ven-demo-ven-1"]:
            baseline = building.baseline_kw(at) * 1000
            assert 0.9 * baseline <= watts <= 1.1 * baseline, (at, watts, baseline)

        start = datetime.now(timezone.utc)
        vtn.server.add_event("ven-demo-ven-1", "simple", "level",
                             [{"dtstart": start, "duration": timedelta(minutes=10), "signal_payload": 3.0}],
                             callback=vtn.on_opt, event_id="shed-now")
        await eventually(lambda: vtn.opts.get("shed-now") == "optIn", timeout=30, message="optIn")
        # The VEN sheds from the moment it opted in (the optIn reached us after that).
        opted_in_by = datetime.now(timezone.utc)

        def shed_readings():
            return [(at, w) for at, w in vtn.readings["ven-demo-ven-1"] if at > opted_in_by]

        await eventually(lambda: len(shed_readings()) >= 3, timeout=30, message="readings during the event")
        for at, watts in shed_readings()[-3:]:
            expected = building.baseline_kw(at) * 1000 * (1 - SIMPLE_SHED[3])
            assert 0.9 * expected <= watts <= 1.1 * expected, (at, watts, expected)
        # The VEN that was not targeted keeps its normal load.
        other = BuildingLoad(3)
        at, watts = vtn.readings["ven-demo-ven-3"][-1]
        assert watts >= 0.9 * other.baseline_kw(at) * 1000

        # The one that opts out says so and keeps its load too.
        vtn.server.add_event("ven-demo-ven-2", "simple", "level",
                             [{"dtstart": datetime.now(timezone.utc), "duration": timedelta(minutes=10),
                               "signal_payload": 3.0}], callback=vtn.on_opt, event_id="shed-2")
        await eventually(lambda: vtn.opts.get("shed-2") == "optOut", timeout=30, message="optOut")
        refused_by = datetime.now(timezone.utc)
        await eventually(lambda: any(at > refused_by for at, _ in vtn.readings["ven-demo-ven-2"]), timeout=30,
                         message="a reading after the optOut")
        at, watts = vtn.readings["ven-demo-ven-2"][-1]
        assert watts >= 0.9 * BuildingLoad(2).baseline_kw(at) * 1000
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C
        out = (await asyncio.wait_for(proc.communicate(), 20))[0].decode()
    assert proc.returncode == 0, out
    assert f"simulator: 0/{COUNT} VEN(s) registered" in out
    assert f"simulator: {COUNT}/{COUNT} VEN(s) registered" in out
    summary = re.search(r"simulator summary: (\d+)/(\d+) VEN\(s\) registered, (\d+) reading\(s\) sent, "
                        r"(\d+) event\(s\), (\d+) opt-in\(s\), (\d+) opt-out\(s\)", out)
    assert summary, out
    registered, total, readings, events, opt_ins, opt_outs = map(int, summary.groups())
    assert (registered, total, events, opt_ins, opt_outs) == (COUNT, COUNT, 2, 1, 1)
    assert readings >= sum(len(r) for r in vtn.readings.values())
    assert "simulator stopped" in out
    assert "Traceback" not in out
