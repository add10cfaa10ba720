"""Issue 2's four steps, end to end: real openleadr VENs over HTTP against `adrstack up`,
checked through GraphQL, a NATS subscription and rows in Postgres."""

from __future__ import annotations

import copy
import itertools
import json
import random
from datetime import datetime, timedelta, timezone

import httpx
import nats
import psycopg
import pytest
from openleadr import OpenADRClient

from tests.helpers import eventually

pytestmark = pytest.mark.e2e

_names = itertools.count(1)


def ven_name(tag: str) -> str:
    return f"e2e-{tag}-{next(_names)}-{random.randrange(10**6)}"


class FactTap:
    """A NATS subscription to every subject of this stack, as `nats sub '<prefix>.>'` would show."""

    def __init__(self, stack):
        self.stack = stack
        self.seen: list[tuple[str, dict]] = []

    async def __aenter__(self):
        self.nc = await nats.connect(self.stack.settings.nats_url)

        async def on_msg(msg):
            self.seen.append((msg.subject, json.loads(msg.data)))

        await self.nc.subscribe(self.stack.subjects.everything, cb=on_msg)
        return self

    async def __aexit__(self, *exc):
        await self.nc.drain()

    def subjects(self) -> list[str]:
        return [s for s, _ in self.seen]

    def messages(self, subject: str) -> list[dict]:
        return [m for s, m in self.seen if s == subject]


async def gql(stack, query: str, variables: dict | None = None) -> dict:
    async with httpx.AsyncClient(timeout=15) as client:
        r = await client.post(f"{stack.api_url}/graphql", json={"query": query, "variables": variables or {}})
    r.raise_for_status()
    return r.json()


async def start_ven(stack, name: str, *, opt: str = "optIn", report_value: float | None = None):
    received: list[dict] = []

    async def on_event(event):
        received.append(event)
        return opt

    client = OpenADRClient(ven_name=name, vtn_url=stack.vtn_url)
    client.add_handler("on_event", on_event)
    if report_value is not None:
        client.add_report(
            callback=lambda: report_value,
            resource_id="meter-1",
            measurement="RealPower",
            unit="W",
            report_specifier_id="usage-1",
            r_id="power-1",
            sampling_rate=timedelta(seconds=1),
            report_duration=timedelta(hours=1),
        )
    await client.run()
    assert client.ven_id and client.registration_id, "the VTN did not register the VEN"
    return client, received


def recorder(client) -> list[dict]:
    """Every event of every oadrDistributeEvent as it arrived (openleadr's own handlers see only
    new and modified events, and it rewrites the status of those it keeps by its own clock)."""
    received: list[dict] = []
    on_event = client._on_event

    async def record(message):
        received.extend(copy.deepcopy(message["events"]))
        return await on_event(message)

    client._on_event = record
    return received


def rows(stack, sql: str, *params):
    with psycopg.connect(stack.settings.database_url) as conn:
        return conn.execute(sql, params).fetchall()


VENS = "{ vens { venId venName registrationId registeredAt lastSeenAt } }"
EVENT = """query($id: String!) { event(eventId: $id) { eventId status modificationNumber signalName signalType
  startAt intervals { duration payload } targets { venIds } responses { venId optType respondedAt } } }"""
CREATE = """mutation($input: CreateEventInput!) { createEvent(input: $input) { eventId status modificationNumber } }"""


async def test_registration_reaches_nats_postgres_and_graphql(stack):
    name = ven_name("reg")
    async with FactTap(stack) as tap:
        client, _ = await start_ven(stack, name)
        try:
            ven_id = client.ven_id
            subject = stack.subjects.ven_registered(ven_id)
            await eventually(lambda: subject in tap.subjects(), 15, message=f"fact on {subject}")
            fact = tap.messages(subject)[0]
            assert fact["ven_name"] == name and fact["registration_id"] == client.registration_id
            assert {"id", "occurred_at", "schema_version"} <= set(fact)

            async def listed():
                vens = (await gql(stack, VENS))["data"]["vens"]
                return [v for v in vens if v["venId"] == ven_id]

            [ven] = await eventually(listed, 20, message="VEN listed by GraphQL")
            assert ven["venName"] == name
            assert ven["registrationId"] == client.registration_id
            assert datetime.fromisoformat(ven["registeredAt"]).tzinfo is not None
            assert rows(stack, "select ven_name from vens where ven_id = %s", ven_id) == [(name,)]
        finally:
            await client.stop()

        # The same ven_name registering again keeps its ven_id.
        again, _ = await start_ven(stack, name)
        try:
            assert again.ven_id == ven_id
        finally:
            await again.stop()


async def test_event_is_delivered_on_poll_and_the_opt_in_is_stored(stack):
    async with FactTap(stack) as tap:
        client, received = await start_ven(stack, ven_name("evt"))
        try:
            event_id = f"e2e-{random.randrange(10**9)}"
            start = datetime.now(timezone.utc).replace(microsecond=0)
            created = await gql(stack, CREATE, {"input": {
                "venIds": [client.ven_id], "eventId": event_id,
                "intervals": [{"duration": "PT1H", "payload": 2.0}], "startAt": start.isoformat()}})
            assert "errors" not in created, created
            assert created["data"]["createEvent"]["eventId"] == event_id
            assert created["data"]["createEvent"]["modificationNumber"] == 0

            await eventually(lambda: stack.subjects.event(event_id, "created") in tap.subjects(), 10,
                             message="created fact")
            await eventually(lambda: any(e["event_descriptor"]["event_id"] == event_id for e in received), 20,
                             message="event delivered to the VEN")
            delivered = next(e for e in received if e["event_descriptor"]["event_id"] == event_id)
            signal = delivered["event_signals"][0]
            assert signal["signal_name"] == "SIMPLE" and signal["signal_type"] == "level"
            assert signal["intervals"][0]["signal_payload"] == 2.0

            async def responded():
                ev = (await gql(stack, EVENT, {"id": event_id}))["data"]["event"]
                return ev if ev and ev["responses"] else None

            ev = await eventually(responded, 20, message="optIn visible in GraphQL")
            [resp] = [r for r in ev["responses"] if r["venId"] == client.ven_id]
            assert resp["optType"] == "optIn"
            assert datetime.fromisoformat(resp["respondedAt"]).tzinfo is not None
            assert ev["targets"]["venIds"] == [client.ven_id]
            assert ev["intervals"] == [{"duration": "PT1H", "payload": 2.0}]
            assert stack.subjects.opt(client.ven_id) in tap.subjects()
            assert rows(stack, "select opt_type from event_responses where event_id = %s", event_id) == [("optIn",)]
        finally:
            await client.stop()


async def test_reports_become_readings(stack):
    async with FactTap(stack) as tap:
        client, _ = await start_ven(stack, ven_name("rpt"), report_value=1234.5)
        try:
            ven_id = client.ven_id
            await eventually(lambda: stack.subjects.report_registered(ven_id) in tap.subjects(), 15,
                             message="report metadata fact")
            query = """query($v: String!) { readings(venId: $v, limit: 50) { venId resourceId rId measurement at value unit } }"""

            async def readings():
                return (await gql(stack, query, {"v": ven_id}))["data"]["readings"]

            got = await eventually(readings, 45, interval=0.5, message="readings in GraphQL")
            assert all(r["venId"] == ven_id and r["value"] == 1234.5 for r in got)
            assert got[0]["rId"] == "power-1" and got[0]["resourceId"] == "meter-1"
            assert stack.subjects.report_data(ven_id) in tap.subjects()
            count = rows(stack, "select count(*) from readings where ven_id = %s", ven_id)[0][0]
            assert count >= len(got) > 0
            # each (r_id, at) stored once
            dupes = rows(stack, "select count(*) from (select r_id, at from readings where ven_id = %s "
                                "group by r_id, at having count(*) > 1) d", ven_id)[0][0]
            assert dupes == 0
        finally:
            await client.stop()


async def test_send_event_shortcut(stack):
    client, received = await start_ven(stack, ven_name("send"))
    try:
        url = f"{stack.api_url}/send_event"
        event_id = f"send-{random.randrange(10**9)}"
        async with httpx.AsyncClient(timeout=15) as http:
            ok = await http.post(url, json={"ven_id": client.ven_id, "event_id": event_id, "signal_level": 2})
            assert ok.status_code == 200, ok.text
            body = ok.json()
            assert body["event_id"] == event_id
            assert body["intervals"] == [{"duration": "PT1H", "payload": 2.0}]
            start = datetime.fromisoformat(body["start_at"])
            assert abs(datetime.now(timezone.utc) - start) < timedelta(minutes=1)

            again = await http.post(url, json={"ven_id": client.ven_id, "event_id": event_id, "signal_level": 1})
            assert again.status_code == 409 and "event_id" in again.text
            unknown = await http.post(url, json={"ven_id": "nobody-here", "event_id": "x1", "signal_level": 1})
            assert unknown.status_code == 404 and "ven" in unknown.json()["message"].lower()
            bad = await http.post(url, json={"ven_id": client.ven_id, "event_id": "x2", "signal_level": 7})
            assert bad.status_code == 422 and bad.json()["field"] == "signal_level"
            for r in (again, unknown, bad):
                assert set(r.json()) >= {"error", "message"}
        await eventually(lambda: any(e["event_descriptor"]["event_id"] == event_id for e in received), 20,
                         message="/send_event event delivered")
    finally:
        await client.stop()


async def event_keys(stack) -> set[str]:
    nc = await nats.connect(stack.settings.nats_url)
    try:
        kv = await nc.jetstream().key_value(stack.settings.events_bucket)
        try:
            return set(await kv.keys())
        except Exception as e:  # nats-py raises NoKeysError on an empty bucket
            if type(e).__name__ == "NoKeysError":
                return set()
            raise
    finally:
        await nc.close()


async def test_invalid_create_event_input_names_the_field_and_stores_nothing(stack):
    # The scheduler's KV bucket is written before a create is acknowledged, so it is the
    # authoritative place to see that nothing was stored.
    before = await event_keys(stack)
    cases = {
        "venIds": {"venIds": ["no-such-ven"], "intervals": [{"duration": "PT1H", "payload": 1.0}]},
        "intervals": {"venIds": ["x"], "intervals": []},
        "duration": {"venIds": ["x"], "intervals": [{"duration": "one hour", "payload": 1.0}]},
        "startAt": {"venIds": ["x"], "intervals": [{"duration": "PT1H", "payload": 1.0}],
                    "startAt": "2026-01-01T00:00:00"},
    }
    for field, payload in cases.items():
        result = await gql(stack, CREATE, {"input": payload})
        assert result.get("errors"), f"{field}: expected an error, got {result}"
        assert field in json.dumps(result["errors"]), f"{field} not named in {result['errors']}"
        assert not (result.get("data") or {}).get("createEvent")
    assert await event_keys(stack) == before


async def test_the_printed_health_endpoints_answer_and_tail_finds_this_up(stack):
    """The banner's Health line names the scheduler's and telemetry's /readyz, which answer 200; and
    `adrstack tail` with neither --nats-url nor NATS_URL tails the NATS of the up on its data dir."""
    import asyncio
    import os
    import re
    import subprocess
    import sys

    from tests.helpers import http_get

    [line] = [line for line in list(stack.output) if "  Health  " in line]
    urls = dict(re.findall(r"(scheduler|telemetry) (http://127\.0\.0\.1:\d+/readyz)", line))
    assert set(urls) == {"scheduler", "telemetry"}, line
    for url in urls.values():
        status, _, body = await asyncio.to_thread(http_get, url)
        assert status == 200 and json.loads(body)["status"] == "ok", (url, status, body)

    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "ADRSTACK_NATS_URL", "ADRSTACK_SUBJECT_PREFIX")}
    proc = subprocess.Popen([sys.executable, "-m", "adrstack.runtime.cli", "tail", "--data-dir", str(stack.data_dir)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        said = (await asyncio.to_thread(proc.stderr.readline)).decode()
    finally:
        proc.terminate()
        proc.wait(15)
    assert said.startswith(f"adrstack tail: {stack.subjects.prefix}.> on {stack.settings.nats_url} (the NATS of "
                           f"the adrstack up running on {stack.data_dir}, pid {stack.proc.pid})"), said
