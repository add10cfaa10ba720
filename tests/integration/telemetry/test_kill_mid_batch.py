"""kill -9 of a telemetry process in the middle of a batch of readings on the bulk path (COPY into
staging, merge, commit, ack), then a new process: every reading stored exactly once.

Two places: after the COPY, while the merge runs and nothing is committed (the process is held
there by a row another transaction has not committed yet, on one of the batch's keys); and after
the commit, before the ack (held there by the consumer's ``after_commit`` hook).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import psycopg

from adrstack.shared.messages import Reading, ReportData, VenRegistered
from tests.helpers import eventually, stack_env
from tests.integration.runtime.proctools import Output

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
REPORTS, PER_REPORT = 4, 25

# The telemetry service, its consumer held between the commit and the acks of a batch with readings.
HELD_AFTER_COMMIT = """
import asyncio

from adrstack.shared.runner import run_service
from adrstack.telemetry.consumer import TelemetryConsumer
from adrstack.telemetry.settings import TelemetrySettings

async def hold(msgs):
    if any(m.subject.endswith(".report.data") for m in msgs):
        print("committed, not acked", flush=True)
        await asyncio.Event().wait()  # until killed

async def serve(stop):
    consumer = TelemetryConsumer(TelemetrySettings(), after_commit=hold)
    try:
        await consumer.start()
        await consumer.run(stop)
    finally:
        await consumer.stop()

run_service(serve)
"""


def report(k: int) -> ReportData:
    return ReportData(ven_id="ven-1", report_specifier_id="rs", readings=[
        Reading(report_specifier_id="rs", r_id=f"p{j}", at=T0 + timedelta(seconds=k), value=float(k * 100 + j), unit="W")
        for j in range(PER_REPORT)])


EXPECTED = {(f"p{j}", T0 + timedelta(seconds=k)): float(k * 100 + j) for k in range(REPORTS) for j in range(PER_REPORT)}


def spawn(harness, argv: list[str]) -> tuple[subprocess.Popen, Output]:
    # A short ack wait: what the killed process held is redelivered soon.
    env = stack_env(harness.settings, ADRSTACK_ACK_WAIT_SECONDS="3", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, Output(proc)


async def registered_ven_stored(harness) -> None:
    """Publish a registration and wait for its row: the process is consuming."""
    await harness.publish(harness.subjects.ven_registered("ven-1"),
                          VenRegistered(ven_id="ven-1", ven_name="b1", registration_id="r1"))
    await eventually(lambda: harness.scalar("select count(*) from vens"), 30, interval=0.2,
                     message="the telemetry process consuming")


async def publish_reports(harness) -> None:
    for k in range(REPORTS):
        await harness.publish(harness.subjects.report_data("ven-1"), report(k))


async def stored_exactly_once_by_a_new_process(harness) -> None:
    proc, out = spawn(harness, ["-m", "adrstack.telemetry"])
    try:
        async def settled():
            info = await harness.consumer_info()
            return info.num_pending == 0 and info.num_ack_pending == 0 and info

        info = await eventually(settled, 30, interval=0.2, message="everything acked by the new process")
        # Delivered more times than the stream has messages: the killed process's batch again.
        assert info.delivered.consumer_seq > info.delivered.stream_seq == 1 + REPORTS, info.delivered
        rows = await harness.rows("select r_id, at, value from readings where ven_id = 'ven-1'")
        assert len(rows) == len(EXPECTED)
        assert {(r_id, at): value for r_id, at, value in rows} == EXPECTED
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, out.text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def kill_9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL


async def test_killed_after_the_copy_before_the_commit(harness):
    url = harness.settings.database_url
    proc, out = spawn(harness, ["-m", "adrstack.telemetry"])
    blocker = psycopg.connect(url)  # a transaction of its own, left open
    try:
        await registered_ven_stored(harness)
        # An uncommitted row on the first report's first key: the merge waits for this transaction.
        blocker.execute("insert into readings (ven_id, report_specifier_id, r_id, at, value, received_at) "
                        "values ('ven-1', 'rs', 'p0', %s, -1, now())", (T0,))
        await publish_reports(harness)

        def merging() -> int | None:
            with psycopg.connect(url) as conn:
                row = conn.execute("select pid from pg_stat_activity where datname = current_database() "
                                   "and wait_event_type = 'Lock' and query like '%FROM readings_staging%'").fetchone()
            return row[0] if row else None

        backend = await eventually(merging, 30, interval=0.1, message="the merge of the staged batch waiting")
        kill_9(proc)
        blocker.rollback()

        def gone() -> bool:
            with psycopg.connect(url) as conn:
                return conn.execute("select count(*) from pg_stat_activity where pid = %s", (backend,)).fetchone()[0] == 0

        await eventually(gone, 30, interval=0.1, message="the killed process's transaction ended")
        assert await harness.scalar("select count(*) from readings") == 0, "committed without its commit"
        info = await harness.consumer_info()
        assert info.num_ack_pending >= 1, "the batch in hand was acked"
    finally:
        blocker.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    await stored_exactly_once_by_a_new_process(harness)


async def test_killed_after_the_commit_before_the_ack(harness):
    proc, out = spawn(harness, ["-c", HELD_AFTER_COMMIT])
    try:
        await registered_ven_stored(harness)
        await publish_reports(harness)
        await eventually(lambda: out.has("committed, not acked"), 30, interval=0.1, message="a batch committed")
        committed = await harness.scalar("select count(*) from readings")
        assert committed >= PER_REPORT and committed % PER_REPORT == 0, committed
        info = await harness.consumer_info()
        assert info.num_ack_pending >= committed // PER_REPORT, "the committed batch was acked"
        kill_9(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    await stored_exactly_once_by_a_new_process(harness)
