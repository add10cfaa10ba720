"""`adrstack simulate` as a user runs it, against the real stack: the home profile's load, an
event with a ramp-up that its VENs opt in to or out of, and Ctrl-C with a summary."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections import deque
from datetime import datetime, timedelta, timezone
from statistics import mean

import pytest

from adrstack.simulator.load import SIMPLE_SHED, BuildingLoad
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

CREATE = """mutation($input: CreateEventInput!) { createEvent(input: $input) { eventId } }"""
ANSWERS = """query($e: String!) { event(eventId: $e) { currentResponses { venId optType } } }"""


def test_simulate_cli_home_fleet_opts_in_and_out_and_sums_up_on_ctrl_c(stack):
    prefix = f"sim-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adrstack.runtime.cli", "simulate", "--vens", "2", "--vtn-url", stack.vtn_url,
         "--profile", "home", "--opt-out-rate", "0.5", "--report-interval", "1", "--name-prefix", prefix],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output: deque[str] = deque(maxlen=2000)
    pump = threading.Thread(target=lambda: output.extend(line.decode().rstrip() for line in proc.stdout), daemon=True)
    pump.start()
    try:
        def registered():
            vens = stack.graphql("{ vens { venId venName } }")["data"]["vens"]
            mine = {v["venName"]: v["venId"] for v in vens if v["venName"].startswith(prefix)}
            return mine if len(mine) == 2 else None

        vens = wait_until(registered, timeout=60, interval=0.5, message="both simulated VENs registered")
        wait_until(lambda: "simulator: 2/2 VEN(s) registered" in output, timeout=30, message="the progress line")

        def readings(name):
            rows = stack.graphql('query($v: String!) { readings(venId: $v, limit: 1000) { at value } }',
                                 {"v": vens[name]})["data"]["readings"]
            return [(datetime.fromisoformat(r["at"]), r["value"]) for r in rows]

        wait_until(lambda: all(len(readings(n)) >= 3 for n in vens), timeout=60, interval=0.5,
                   message="readings from both")
        for i in (1, 2):  # a household, not an office block
            at, watts = readings(f"{prefix}-{i}")[0]
            baseline = BuildingLoad(i, profile="home").baseline_kw(at) * 1000
            assert 0.9 * baseline <= watts <= 1.1 * baseline, (i, at, watts, baseline)

        # Starts in 4 s and ramps in over the 4 s before: the load is down by the start.
        start = (datetime.now(timezone.utc) + timedelta(seconds=4)).replace(microsecond=0)
        event_id = stack.graphql(CREATE, {"input": {
            "venIds": list(vens.values()), "startAt": start.isoformat(), "rampUp": "PT4S",
            "intervals": [{"duration": "PT10M", "payload": 3.0}]}})["data"]["createEvent"]["eventId"]

        def answers():
            rows = stack.graphql(ANSWERS, {"e": event_id})["data"]["event"]["currentResponses"]
            return {r["venId"]: r["optType"] for r in rows} if len(rows) == 2 else None

        # --opt-out-rate 0.5 of 2 VENs: the first opts out (simulator.load.opts_out).
        assert wait_until(answers, timeout=30, interval=0.5, message="both answered") == {
            vens[f"{prefix}-1"]: "optOut", vens[f"{prefix}-2"]: "optIn"}

        def in_event(name):
            rows = [(at, w) for at, w in readings(name) if at >= start]
            return rows if len(rows) >= 3 else None

        for i, shed in ((1, 0.0), (2, SIMPLE_SHED[3])):
            rows = wait_until(lambda: in_event(f"{prefix}-{i}"), timeout=30, interval=0.5,
                              message=f"VEN {i} readings in the event")
            building = BuildingLoad(i, profile="home")
            ratio = mean(w / (building.baseline_kw(at) * 1000) for at, w in rows)
            assert ratio == pytest.approx(1 - shed, abs=0.06), (i, rows)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        pump.join(10)
    text = "\n".join(output)
    assert proc.returncode == 0, text
    summary = re.search(r"simulator summary: 2/2 VEN\(s\) registered, (\d+) reading\(s\) sent, 1 event\(s\), "
                        r"1 opt-in\(s\), 1 opt-out\(s\)", text)
    assert summary and int(summary.group(1)) >= 6, text
    assert "Traceback" not in text, text
