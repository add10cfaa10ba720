"""report requests of the VTN to VENs, with their steps

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 09:00:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql


revision: str = '0009'
down_revision: Union[str, None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('report_requests',
    sa.Column('ven_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('report_request_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('report_specifier_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('report_name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('r_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('granularity_seconds', sa.Float(), nullable=False),
    sa.Column('report_back_duration_seconds', sa.Float(), nullable=False),
    sa.Column('interval_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('interval_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('report_to_follow', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failure', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ven_id', 'report_request_id')
    )
    op.create_index('ix_report_requests_ven_created', 'report_requests', ['ven_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_report_requests_ven_created', table_name='report_requests')
    op.drop_table('report_requests')
