"""readings_15m: 15-minute rollups of readings, partitioned by day like readings, backfilled

``readings_15m`` holds, per (VEN, bucket start, report specifier, rID, resource, measurement,
unit), the count, sum, min and max of the readings in that UTC 15-minute bucket
(``adrstack.shared.rollups``). It is partitioned by range on ``bucket`` exactly as ``readings`` is
on ``at``: a partition ``readings_15m_pYYYYMMDD`` for every day ``readings`` has one (telemetry
creates and drops the two together from now on), and ``readings_15m_default``. The upgrade then
adds every stored reading to it (the same backfill the history benchmark runs); telemetry keeps it
from then on, in each batch's transaction.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:00:00
"""
from typing import Sequence, Union

from alembic import op

# The one backfill (also bench/history.py's): the rollup of readings must be computed one way only.
from adrstack.shared.rollups import backfill_sql


revision: str = '0011'
down_revision: Union[str, None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE readings_15m (
            ven_id VARCHAR NOT NULL,
            bucket TIMESTAMP WITH TIME ZONE NOT NULL,
            report_specifier_id VARCHAR NOT NULL,
            r_id VARCHAR NOT NULL,
            resource_id VARCHAR NOT NULL,
            measurement VARCHAR NOT NULL,
            unit VARCHAR NOT NULL,
            n INTEGER NOT NULL,
            total FLOAT NOT NULL,
            mn FLOAT NOT NULL,
            mx FLOAT NOT NULL,
            CONSTRAINT readings_15m_pkey
                PRIMARY KEY (ven_id, bucket, report_specifier_id, r_id, resource_id, measurement, unit)
        ) PARTITION BY RANGE (bucket)
    """)
    op.execute("CREATE TABLE readings_15m_default PARTITION OF readings_15m DEFAULT")
    op.execute("""
        DO $$
        DECLARE day text;
        BEGIN
            FOR day IN
                SELECT substr(c.relname, length('readings_p') + 1) FROM pg_inherits i
                JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'readings'::regclass AND c.relname ~ '^readings_p[0-9]{8}$'
            LOOP
                EXECUTE format('CREATE TABLE %I PARTITION OF readings_15m FOR VALUES FROM (%L) TO (%L)',
                               'readings_15m_p' || day, to_date(day, 'YYYYMMDD')::text || ' 00:00:00+00',
                               (to_date(day, 'YYYYMMDD') + 1)::text || ' 00:00:00+00');
            END LOOP;
        END $$
    """)
    op.execute(backfill_sql())


def downgrade() -> None:
    # Dropping the parent drops every partition with it.
    op.execute("DROP TABLE readings_15m")
