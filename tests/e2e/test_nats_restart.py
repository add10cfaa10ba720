"""NATS down and back under separately started services (issue 8): the four services run as
`python -m adrstack.<service>` processes (as compose runs them, not under `adrstack up`) against a
nats-server of this module's own; it is stopped (SIGTERM, then in a second test kill -9) while
real openleadr VENs report every second, and started again on the same port and store dir.

Every service resumes by itself: the gateway serves polls and takes reports again, the API answers
GraphQL and sends commands, the scheduler runs an event created after the restart through its
transitions (each fired once), telemetry stores. Exactly once, with values we control
(:class:`CountingVen`): every reading the gateway acknowledged (oadrUpdatedReport, code 200) is
stored exactly once, nothing is stored twice or that the VEN never sent, and a report the gateway
refused while it knew NATS was down is not stored either (it was never sent on, not even on the
reconnect). Only a report in flight at the very moment NATS goes away may be refused yet stored.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import pytest
import pytest_asyncio

from adrstack.runtime.embedded import EmbeddedNats, create_database, drop_database
from adrstack.runtime.ports import free_port, port_answers
from adrstack.shared.settings import CommonSettings
from tests.conftest import unique_names
from tests.e2e.test_embedded_servers import CountingVen
from tests.e2e.test_spine import CREATE, EVENT, gql, ven_name
from tests.helpers import STACK_NAME_FIELDS, eventually, stack_env, temp_dir
from tests.integration.runtime.proctools import Output

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SERVICES = ("gateway", "scheduler", "telemetry", "api")


class Separate:
    """A NATS server, the four services as processes of their own, and the VENs reporting to them."""

    def __init__(self, tmp: Path, nats_server: EmbeddedNats, settings: CommonSettings, env: dict[str, str],
                 vtn_port: int, api_port: int):
        self.tmp, self.nats, self.settings, self.env = tmp, nats_server, settings, env
        self.vtn_port, self.api_port = vtn_port, api_port
        self.procs: dict[str, subprocess.Popen] = {}
        self.output: dict[str, Output] = {}
        self.vens: list[CountingVen] = []

    @property
    def vtn_url(self) -> str:
        return f"http://127.0.0.1:{self.vtn_port}/OpenADR2/Simple/2.0b"

    @property
    def api_url(self) -> str:  # for gql()
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, service: str) -> None:
        proc = subprocess.Popen([sys.executable, "-m", f"adrstack.{service}"], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs[service] = proc
        self.output[service] = Output(proc)

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(f"--- {name}\n" + "\n".join(out.lines[-n:]) for name, out in self.output.items())

    def stop_services(self) -> dict[str, int | None]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                codes[name] = None  # did not stop on SIGTERM
        return codes

    async def health(self) -> tuple[int | None, int | None]:
        """The HTTP status of the gateway's and the API's /health (None: no answer)."""
        codes = []
        async with httpx.AsyncClient(timeout=2) as http:
            for port in (self.vtn_port, self.api_port):
                try:
                    codes.append((await http.get(f"http://127.0.0.1:{port}/health")).status_code)
                except httpx.HTTPError:
                    codes.append(None)
        return codes[0], codes[1]

    async def healthy(self) -> bool:
        exited = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        assert not exited, f"services exited: {exited}\n{self.log_tail()}"
        return await self.health() == (200, 200) and all(self.output[s].has(f"{s} ready")
                                                         for s in ("scheduler", "telemetry"))

    def stored(self, ven: CountingVen) -> list[float]:
        with psycopg.connect(self.settings.database_url, connect_timeout=3) as conn:
            return [v for (v,) in conn.execute("select value from readings where ven_id = %s and r_id = 'count-1'",
                                               (ven.client.ven_id,))]

    def check_exactly_once(self) -> dict[str, set[float]]:
        return {ven.client.ven_id: set(ven.check_exactly_once(self.stored(ven))) for ven in self.vens}

    def acked_stored_beyond(self, marks: dict[str, float], count: int = 2) -> bool:
        """Each VEN has ``count`` acknowledged values above its mark, and every acknowledged one stored."""
        for ven in self.vens:
            if len({v for v in ven.acked if v > marks[ven.client.ven_id]}) < count:
                return False
            if ven.acked - set(self.stored(ven)):
                return False
        return True

    def marks(self) -> dict[str, float]:
        return {ven.client.ven_id: float(ven.n) for ven in self.vens}

    def transitions(self, event_id: str) -> dict[str, int]:
        with psycopg.connect(self.settings.database_url, connect_timeout=3) as conn:
            return dict(conn.execute("select transition, count(*) from event_transitions where event_id = %s "
                                     "group by transition", (event_id,)).fetchall())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def separate(infra):
    tmp = temp_dir("nats-restart")
    nats_server = EmbeddedNats(tmp / "nats", preferred_port=0).start(tmp / "nats.log")
    names = unique_names()
    create_database(infra.admin_url, names["database"])
    settings = CommonSettings(nats_url=nats_server.url, database_url=infra.database(names["database"]),
                              **{k: names[k] for k in STACK_NAME_FIELDS})
    vtn_port, api_port = free_port(), free_port()
    env = stack_env(settings, ADRSTACK_VTN_HOST="127.0.0.1", ADRSTACK_VTN_PORT=str(vtn_port),
                    ADRSTACK_API_HOST="127.0.0.1", ADRSTACK_API_PORT=str(api_port), ADRSTACK_POLL_INTERVAL="1",
                    ADRSTACK_REPORT_INTERVAL="1", PYTHONUNBUFFERED="1")
    s = Separate(tmp, nats_server, settings, env, vtn_port, api_port)
    try:
        migrated = subprocess.run([sys.executable, "-m", "adrstack.runtime.cli", "migrate"], env=env,
                                  capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        for service in SERVICES:
            s.start(service)
        await eventually(s.healthy, 60, interval=0.25, message="the four services ready")
        for _ in range(2):
            ven = CountingVen(s.vtn_url, ven_name("nats-restart"))
            s.vens.append(ven)
            await ven.client.run()
            assert ven.client.ven_id, "the VTN did not register the VEN"
        await eventually(lambda: s.acked_stored_beyond(dict.fromkeys(s.marks(), 0.0), 3), 30, interval=0.25,
                         message="first readings stored")
        yield s
    finally:
        for ven in s.vens:
            await ven.client.stop()
        codes = s.stop_services()
        nats_server.stop()
        drop_database(infra.admin_url, names["database"])
        shutil.rmtree(tmp, ignore_errors=True)
    assert codes == dict.fromkeys(SERVICES, 0), f"services did not stop cleanly on SIGTERM: {codes}\n{s.log_tail()}"


async def restart_nats(s: Separate, sig: signal.Signals) -> None:
    before = s.check_exactly_once()
    port = s.nats.port
    if sig == signal.SIGKILL:
        s.nats.proc.kill()
        s.nats.proc.wait(10)
    else:
        s.nats.stop()  # SIGTERM, waits for the exit
    assert s.nats.proc.returncode is not None and not port_answers(port)

    # The gateway and the API say so on /health; VENs go on reporting and are refused (or never
    # answered): openleadr drops those reports, so they must not count as acknowledged.
    await eventually(lambda: _equals(s.health(), (503, 503)), 15, interval=0.2,
                     message="gateway and API report NATS down")
    # Values read after this were reported while the gateway knew NATS was down.
    seen_down_at = s.marks()

    def refused_while_down() -> dict[str, set[float]]:
        refused = {ven.client.ven_id: {v for v in ven.sent - ven.acked if v > seen_down_at[ven.client.ven_id]}
                   for ven in s.vens}
        return refused if all(refused.values()) else {}

    refused = await eventually(refused_while_down, 20, interval=0.2,
                               message="each VEN had a report refused while NATS was down")

    s.nats.preferred_port = port  # the same port and store dir
    s.nats.start(s.tmp / "nats.log")
    assert s.nats.port == port
    back_at = s.marks()
    await eventually(s.healthy, 30, interval=0.2, message="every service connected again")

    # Telemetry stores again, every acknowledged reading.
    await eventually(lambda: s.acked_stored_beyond(back_at), 30, interval=0.25,
                     message="readings sent after the restart acknowledged and stored")

    # The API sends a command, the scheduler takes it and fires the event's transitions, the gateway
    # delivers it on the VENs' polls and takes their optIn, telemetry stores all of it.
    event_id = f"after-{sig.name.lower()}-{random.randrange(10**9)}"
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=3)
    ven_ids = [ven.client.ven_id for ven in s.vens]
    created = await gql(s, CREATE, {"input": {"venIds": ven_ids, "eventId": event_id, "startAt": start.isoformat(),
                                              "intervals": [{"duration": "PT3S", "payload": 2.0}]}})
    assert "errors" not in created, created

    async def completed():
        event = (await gql(s, EVENT, {"id": event_id}))["data"]["event"]
        assert event and event["status"] == "completed" and len(event["responses"]) == len(ven_ids), event
        return event

    event = await eventually(completed, 30, interval=0.25, message="the new event completed, both VENs' answers stored")
    assert sorted((r["venId"], r["optType"]) for r in event["responses"]) == sorted((v, "optIn") for v in ven_ids)
    for ven in s.vens:
        assert event_id in [e["event_descriptor"]["event_id"] for e in ven.events], "not delivered on a poll"
    fired = s.transitions(event_id)
    assert fired.get("created") == fired.get("active") == fired.get("completed") == 1, fired

    after = s.check_exactly_once()
    for ven_id, values in before.items():
        assert values <= after[ven_id]
        # What the VEN was told was not stored is not stored (nor sent on later, once NATS is back).
        assert not refused[ven_id] & after[ven_id], f"refused, then stored: {refused[ven_id] & after[ven_id]}"


async def test_nats_stopped_and_started_again(separate: Separate):
    await restart_nats(separate, signal.SIGTERM)


async def test_nats_killed_and_started_again(separate: Separate):
    await restart_nats(separate, signal.SIGKILL)
    assert all(len(ven.acked) >= 10 for ven in separate.vens)


async def _equals(awaitable, expected) -> bool:
    return (await awaitable) == expected
