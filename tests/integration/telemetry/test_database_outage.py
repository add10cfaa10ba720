"""A Postgres outage longer than max_deliver redeliveries would last loses nothing: telemetry
holds the batch and retries, instead of letting JetStream give up on the messages.

Uses an embedded Postgres of its own, so that it can be stopped without touching other tests."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import psycopg

from adrstack.runtime.embedded import EmbeddedPostgres
from adrstack.runtime.migrate import upgrade
from adrstack.shared.messages import Reading, ReportData
from tests.helpers import eventually, temp_dir


def readings(start: int, n: int) -> ReportData:
    t0 = datetime(2026, 11, 26, tzinfo=timezone.utc)
    return ReportData(
        ven_id="ven-outage",
        report_specifier_id="rs",
        readings=[Reading(report_specifier_id="rs", r_id="p", at=t0 + timedelta(seconds=i), value=float(i))
                  for i in range(start, start + n)],
    )


def count(url: str) -> int:
    with psycopg.connect(url, connect_timeout=2) as conn:
        return conn.execute("select count(*) from readings").fetchone()[0]


async def test_readings_survive_a_database_outage(harness):
    data = temp_dir("outage")
    pg = EmbeddedPostgres(data, preferred_port=0).start()
    try:
        upgrade(pg.url)
        # max_deliver=2 with nak-and-forget would drop these messages after two failures.
        settings = harness.settings_with(database_url=pg.url, max_deliver=2, nak_delay_seconds=0.2,
                                         retry_initial_seconds=0.2, retry_max_seconds=0.5)
        consumer, _ = await harness.start_consumer(settings)
        s = harness.subjects
        await harness.publish(s.report_data("ven-outage"), readings(0, 10))
        await eventually(lambda: count(pg.url) == 10, timeout=15, message="first readings stored")

        pg.stop()
        await harness.publish(s.report_data("ven-outage"), readings(10, 10))
        await harness.publish(s.report_data("ven-outage"), readings(20, 10))

        # Stay down for more failed writes than max_deliver deliveries would allow.
        stored_before = consumer.stored
        await eventually(lambda: consumer.failed_writes >= 2, timeout=15, message="writes failing while down")
        delivered = (await harness.consumer_info()).delivered.consumer_seq
        await eventually(lambda: consumer.failed_writes >= 5, timeout=15, message="writes failing while down")
        assert consumer.stored == stored_before
        info = await harness.consumer_info()
        assert info.num_redelivered == 0, "held messages must not be redelivered (each counts to max_deliver)"
        assert info.delivered.consumer_seq == delivered, "nothing more is fetched (nor naked) while holding"

        pg.preferred_port = pg.port  # come back where the consumer looks for it
        pg.start()
        await eventually(lambda: count(pg.url) == 30, timeout=30, interval=0.3,
                         message="held readings stored after the outage")
        with psycopg.connect(pg.url) as conn:
            dupes = conn.execute("select count(*) from (select at from readings group by at having count(*) > 1) d")
            assert dupes.fetchone()[0] == 0
    finally:
        pg.stop()
        shutil.rmtree(data, ignore_errors=True)
