"""The README's promise on a machine with nothing configured: `adrstack up --demo 3` with
embedded NATS and Postgres shows 3 VENs within 30 s, readings for each, and then, without anyone
typing anything, a demand-response event that reaches them: two opt in and shed, one opts out."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from statistics import mean

import psycopg
import pytest

from tests.e2e.conftest import start_stack, stop_stack
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

EVENT_IN = 15  # seconds from registration to the event's start; it ramps in over the last third
EVENT_LINE = re.compile(r"demo event (\S+) scheduled for 3 VEN\(s\): SIMPLE level 2 for one hour from "
                        r"\d\d:\d\d:\d\d \S+ \(in 15s, ramping in over (\d+)s before\)")


def test_up_with_embedded_servers_three_demo_vens_and_a_demo_event():
    # No NATS_URL / DATABASE_URL: `adrstack up` must bring its own servers. Readings every second
    # so that the load before and during the event is seen within the test's time.
    stack = start_stack({"ADRSTACK_REPORT_INTERVAL": "1"}, extra_args=["--demo", "3", "--demo-event-in", str(EVENT_IN)])
    try:
        assert stack.banner_value("VTN") == f"http://localhost:{stack.vtn_port}/OpenADR2/Simple/2.0b"
        assert stack.banner_value("GraphQL") == f"http://localhost:{stack.api_port}/graphql"
        assert re.fullmatch(r"nats://[\w.\-]+:\d+", stack.banner_value("NATS"))
        db_url = stack.banner_value("Database")
        assert db_url.startswith("postgresql://")

        def demo_vens():
            vens = stack.graphql("{ vens { venId venName } }")["data"]["vens"]
            demo = {v["venName"]: v["venId"] for v in vens if v["venName"].startswith("demo-ven-")}
            return demo if len(demo) == 3 else None

        vens = wait_until(demo_vens, timeout=30, interval=0.5, message="3 demo VENs listed")

        def readings(ven_id):
            rows = stack.graphql('query($v: String!) { readings(venId: $v, limit: 1000) { at value } }',
                                 {"v": ven_id})["data"]["readings"]
            return [(datetime.fromisoformat(r["at"]), r["value"]) for r in rows]

        wait_until(lambda: all(readings(v) for v in vens.values()), timeout=60, interval=1,
                   message="readings for each demo VEN")
        with psycopg.connect(db_url) as conn:
            assert conn.execute("select count(distinct ven_id) from readings").fetchone()[0] == 3

        # The event `up` scheduled by itself, as an operator would have through the API.
        match = wait_until(lambda: next(filter(None, map(EVENT_LINE.search, list(stack.output)))), timeout=30,
                           interval=0.5, message="the demo event line")
        event_id, ramp_up = match.group(1), timedelta(seconds=int(match.group(2)))
        event = stack.graphql('query($e: String!) { event(eventId: $e) { startAt targets { venIds } } }',
                              {"e": event_id})["data"]["event"]
        assert sorted(event["targets"]["venIds"]) == sorted(vens.values())
        start = datetime.fromisoformat(event["startAt"])

        def answers():
            rows = stack.graphql('query($e: String!) { event(eventId: $e) { currentResponses { venId optType } } }',
                                 {"e": event_id})["data"]["event"]["currentResponses"]
            return {r["venId"]: r["optType"] for r in rows} if len(rows) == 3 else None

        # --opt-out-rate 0.34 of 3 VENs: demo-ven-2 says no (simulator.load.opts_out).
        assert wait_until(answers, timeout=30, interval=0.5, message="every demo VEN answered") == {
            vens["demo-ven-1"]: "optIn", vens["demo-ven-2"]: "optOut", vens["demo-ven-3"]: "optIn"}

        def during(ven_id):
            rows = [w for at, w in readings(ven_id) if at >= start]
            return rows if len(rows) >= 3 else None

        for name, ven_id in vens.items():
            shed = wait_until(lambda: during(ven_id), timeout=60, interval=1, message=f"{name} readings in the event")
            before = [w for at, w in readings(ven_id) if at < start - ramp_up]
            assert before, f"{name}: no reading before the ramp"
            if name == "demo-ven-2":
                assert mean(shed) > 0.85 * mean(before), (name, before, shed)
            else:  # level 2 sheds a quarter; the noise is a few percent
                assert mean(shed) < 0.85 * mean(before), (name, before, shed)
    finally:
        assert stop_stack(stack) == 0
