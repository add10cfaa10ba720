"""TELEMETRY_STATUS: ven_status (history) and ven_status_latest (per VEN and resource)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:00:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql


revision: str = '0010'
down_revision: Union[str, None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('ven_status',
    sa.Column('ven_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('report_specifier_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('r_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('resource_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('manual_override', sa.Boolean(), nullable=False),
    sa.Column('load_control', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ven_id', 'at', 'report_specifier_id', 'r_id', name='ven_status_pkey')
    )
    op.create_table('ven_status_latest',
    sa.Column('ven_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('resource_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('resource_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('report_specifier_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('r_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('manual_override', sa.Boolean(), nullable=False),
    sa.Column('load_control', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ven_id', 'resource_key')
    )


def downgrade() -> None:
    op.drop_table('ven_status_latest')
    op.drop_table('ven_status')
