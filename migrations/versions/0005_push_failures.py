"""push failures

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 07:15:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql


revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('push_failures',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('ven_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('event_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('gave_up', sa.Boolean(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_push_failures_ven_at', 'push_failures', ['ven_id', 'occurred_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_push_failures_ven_at', table_name='push_failures')
    op.drop_table('push_failures')
