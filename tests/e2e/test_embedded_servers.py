"""`adrstack up` survives the faults of issue 8, in sequence, with a VEN reporting throughout:
kill -9 of telemetry (`up` restarts it); Postgres stopped for about 10 s (SIGSTOP, then SIGCONT);
kill -9 of the embedded nats-server or of the embedded Postgres (reported, the server comes back on
the same port and data, and the services resume by themselves); stopping `up` and starting it
again on the same data dir keeps VENs, events, responses and readings, and the VEN its venID.

Exactly once, checked with values we control: the VEN's report callback returns 1, 2, 3, ...;
every value the gateway acknowledged (oadrUpdatedReport, code 200) must be stored exactly once,
and nothing is stored twice or that the VEN never sent. (A report refused or never answered
during an outage is lost to openleadr's VEN, which does not send it again: it may or may not be
stored, but at most once.)
"""

from __future__ import annotations

import contextlib
import random
import re
import signal
import threading
from datetime import timedelta

import psutil
import psycopg
import pytest
import pytest_asyncio
from openleadr import OpenADRClient

from adrstack.runtime.ports import port_answers
from adrstack.shared.settings import CommonSettings
from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.e2e.test_spine import CREATE, EVENT, gql, ven_name
from tests.helpers import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Reports every second (1 s sampling, reported back each second) instead of every 10 s.
ENV = {"ADRSTACK_REPORT_INTERVAL": "1"}
VALUE = re.compile(r"<ei:value>([^<]*)</ei:value>")


class CountingVen:
    """A real openleadr VEN whose readings are 1, 2, 3, ...; it notes which ones the gateway acknowledged."""

    def __init__(self, vtn_url: str, name: str):
        self.n = 0
        self.sent: set[float] = set()
        self.acked: set[float] = set()
        self.events: list[dict] = []
        self.client = OpenADRClient(ven_name=name, vtn_url=vtn_url)
        self.client.add_report(callback=self.next_value, resource_id="meter-1", measurement="RealPower", unit="W",
                               report_specifier_id="count-1", r_id="count-1", sampling_rate=timedelta(seconds=1),
                               report_duration=timedelta(hours=1))

        async def on_event(event):
            self.events.append(event)
            return "optIn"

        self.client.add_handler("on_event", on_event)
        perform = self.client._perform_request

        async def perform_and_note(service, message):
            result = await perform(service, message)
            text = message.decode() if isinstance(message, bytes) else message
            if service == "EiReport" and "oadrUpdateReport" in text:
                values = {float(v) for v in VALUE.findall(text)}
                self.sent |= values
                if (result and result[0] == "oadrUpdatedReport"
                        and result[1].get("response", {}).get("response_code") == 200):
                    self.acked |= values
            return result

        self.client._perform_request = perform_and_note

    def next_value(self) -> float:
        self.n += 1
        return float(self.n)

    def check_exactly_once(self, stored: list[float]) -> list[float]:
        """Every acknowledged value is in ``stored`` exactly once; nothing stored twice or never sent."""
        assert len(stored) == len(set(stored)), f"duplicated readings: {sorted(stored)}"
        assert set(stored) <= self.sent, f"stored but never sent: {set(stored) - self.sent}"
        missing = self.acked - set(stored)
        assert not missing, f"acknowledged but not stored: {sorted(missing)}"
        return stored


class Embedded:
    """The stack, its VEN, and what they tell."""

    def __init__(self, stack: Stack, ven: CountingVen):
        self.stack = stack
        self.ven = ven
        self.use(stack)

    def use(self, stack: Stack) -> None:
        self.stack = stack
        self.nats_url, self.database_url = stack.banner_value("NATS"), stack.banner_value("Database")
        stack.settings = CommonSettings(nats_url=self.nats_url, database_url=self.database_url)

    def stored(self) -> list[float]:
        with psycopg.connect(self.database_url, connect_timeout=3) as conn:
            return [v for (v,) in conn.execute("select value from readings where ven_id = %s and r_id = 'count-1'",
                                               (self.ven.client.ven_id,))]

    def check_exactly_once(self) -> list[float]:
        """Every acknowledged value is stored exactly once; nothing stored twice or never sent."""
        return self.ven.check_exactly_once(self.stored())

    def acked_stored_beyond(self, value: float, count: int = 2) -> bool:
        """``count`` acknowledged values above ``value`` stored, and every acknowledged one so far."""
        newer = {v for v in self.ven.acked if v > value}
        return len(newer) >= count and not (self.ven.acked - set(self.stored()))

    def server(self, name: str) -> psutil.Process:
        """The embedded server `up` runs as its direct child (nats-server, or the postmaster)."""
        [proc] = [p for p in psutil.Process(self.stack.proc.pid).children()
                  if p.name() == name and p.status() != psutil.STATUS_ZOMBIE]
        return proc

    def said(self, *parts: str) -> bool:
        """Some line of `up`'s output has all of ``parts``."""
        return any(all(p in line for p in parts) for line in list(self.stack.output))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def embedded():
    # No NATS_URL / DATABASE_URL: `adrstack up` runs its own servers.
    stack = start_stack(ENV)
    ven = CountingVen(stack.vtn_url, ven_name("embedded"))
    e = Embedded(stack, ven)
    try:
        await ven.client.run()
        assert ven.client.ven_id, "the VTN did not register the VEN"
        await eventually(lambda: e.acked_stored_beyond(0, 3), 30, interval=0.25, message="first readings stored")
        yield e
    finally:
        await ven.client.stop()
        assert stop_stack(e.stack) == 0, e.stack.log_tail()


def no_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_kill_9_of_telemetry(embedded: Embedded):
    e = embedded
    before = set(e.check_exactly_once())
    [old] = e.stack.service_processes("telemetry")
    old.send_signal(signal.SIGKILL)

    await eventually(lambda: e.said("telemetry", "exited with code -9 (SIGKILL); restarting in"), 10,
                     message="the death reported")

    def restarted() -> bool:
        return any(p.pid != old.pid and no_zombie(p.pid) for p in e.stack.service_processes("telemetry"))

    await eventually(restarted, 30, message="telemetry restarted by up")
    killed_at = e.ven.n
    await eventually(lambda: e.acked_stored_beyond(killed_at), 30, interval=0.25,
                     message="readings sent after the restart stored")
    assert before <= set(e.check_exactly_once())


async def test_postgres_stopped_for_10_s(embedded: Embedded):
    """Every process of the embedded Postgres stopped (SIGSTOP) and continued: no connection is
    refused, every query just hangs, as on a stalled server. The gateway goes on acknowledging
    reports (JetStream holds them); once Postgres runs again they are all stored, once."""
    e = embedded
    before = set(e.check_exactly_once())
    postmaster = e.server("postgres")
    server = [postmaster, *postmaster.children(recursive=True)]
    stopped_at = e.ven.n
    for p in server:
        p.suspend()
    try:
        # As long as the VEN takes to have 10 reports acknowledged, at one a second.
        await eventually(lambda: len({v for v in e.ven.acked if v > stopped_at}) >= 10, 30, interval=0.25,
                         message="reports acknowledged while Postgres is stopped")
        assert all(p.status() == psutil.STATUS_STOPPED for p in server if p.is_running())
    finally:
        for p in server:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.resume()
    held = {v for v in e.ven.acked if v > stopped_at}
    continued_at = e.ven.n
    await eventually(lambda: e.acked_stored_beyond(continued_at), 30, interval=0.25,
                     message="readings stored again once Postgres runs")
    stored = set(e.check_exactly_once())
    assert before | held <= stored


async def test_kill_9_of_the_embedded_nats(embedded: Embedded):
    e = embedded
    port = int(e.nats_url.rsplit(":", 1)[1])
    old = e.server("nats-server")
    before = set(e.check_exactly_once())
    old.send_signal(signal.SIGKILL)

    await eventually(lambda: e.said(f"nats (embedded NATS on 127.0.0.1:{port}, data in ",
                                    ") exited with code -9 (SIGKILL); restarting in"), 10, message="the death reported")
    await eventually(lambda: e.said(f"nats (embedded NATS on 127.0.0.1:{port}, data in ", ") is back (pid"),
                     20, message="nats back")
    assert no_zombie(old.pid), "the dead nats-server was not reaped"
    assert e.server("nats-server").pid != old.pid and port_answers(port)
    killed_at = e.ven.n
    await eventually(lambda: e.acked_stored_beyond(killed_at), 30, interval=0.25,
                     message="readings sent after the restart stored")
    stored = set(e.check_exactly_once())
    assert before <= stored


async def test_kill_9_of_the_embedded_postgres(embedded: Embedded):
    e = embedded
    port = int(e.database_url.rsplit(":", 1)[1].split("/")[0])
    old = e.server("postgres")
    before = set(e.check_exactly_once())

    # A backend busy in a long query does not notice the postmaster's death and keeps the shared
    # memory attached; unless `up` ends it, Postgres refuses to start again.
    def busy():
        try:
            with psycopg.connect(e.database_url) as conn:
                conn.execute("select count(*) from generate_series(1, 10000000000)")
        except psycopg.Error:
            pass

    thread = threading.Thread(target=busy, daemon=True)
    thread.start()

    def running() -> bool:
        with psycopg.connect(e.database_url) as conn:
            return conn.execute("select count(*) from pg_stat_activity where state = 'active' "
                                "and query like '%generate_series(1, 10000000000)%' and pid <> pg_backend_pid()"
                                ).fetchone()[0] == 1

    await eventually(running, 10, message="a busy backend")
    old.send_signal(signal.SIGKILL)

    await eventually(lambda: e.said(f"postgres (embedded Postgres on 127.0.0.1:{port}, data in ",
                                    ") exited with code -9 (SIGKILL); restarting in"), 10, message="the death reported")
    # The leftovers are ended just before the restart, a moment after the death is reported.
    await eventually(lambda: e.said("postgres: killed ", f"leftover process(es) of the dead postmaster {old.pid}"),
                     10, message="the busy backend ended")
    await eventually(lambda: e.said(f"postgres (embedded Postgres on 127.0.0.1:{port}, data in ", ") is back (pid"),
                     30, message="postgres back")
    assert no_zombie(old.pid), "the dead postmaster was not reaped"
    assert e.server("postgres").pid != old.pid and port_answers(port)
    thread.join(10)

    async def graphql_answers():
        vens = (await gql(e.stack, "{ vens { venId } }")).get("data") or {}
        return any(v["venId"] == e.ven.client.ven_id for v in vens.get("vens") or [])

    await eventually(graphql_answers, 20, interval=0.25, message="GraphQL answers again")
    killed_at = e.ven.n
    await eventually(lambda: e.acked_stored_beyond(killed_at), 30, interval=0.25,
                     message="telemetry stores again")
    assert before <= set(e.check_exactly_once())


async def test_up_again_on_the_same_data(embedded: Embedded):
    e = embedded
    ven_id = e.ven.client.ven_id
    event_id = f"embedded-{random.randrange(10**9)}"
    created = await gql(e.stack, CREATE, {"input": {
        "venIds": [ven_id], "eventId": event_id, "intervals": [{"duration": "PT30M", "payload": 2.0}]}})
    assert "errors" not in created, created

    async def responded():
        event = (await gql(e.stack, EVENT, {"id": event_id}))["data"]["event"]
        return event if event and [r["venId"] for r in event["responses"]] == [ven_id] else None

    await eventually(responded, 30, interval=0.25, message="the VEN's optIn stored")
    old = e.stack
    assert stop_stack(old) == 0, old.log_tail()
    stopped_at = e.ven.n
    stack = start_stack(ENV, data_dir=old.data_dir, vtn_port=old.vtn_port, api_port=old.api_port)
    e.use(stack)

    vens = (await gql(stack, "{ vens { venId venName } }"))["data"]["vens"]
    assert [v["venId"] for v in vens] == [ven_id]
    event = await responded()
    assert event and event["responses"][0]["optType"] == "optIn", event
    # The VEN goes on with its venID: its new readings are stored under it.
    await eventually(lambda: e.acked_stored_beyond(stopped_at), 30, interval=0.25,
                     message="readings after the restart stored")
    assert e.ven.client.ven_id == ven_id
    e.check_exactly_once()
    assert len(e.ven.acked) >= 8
