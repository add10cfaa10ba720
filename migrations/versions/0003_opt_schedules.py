"""opt schedules (EiOpt)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 06:55:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql


revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('opt_schedules',
    sa.Column('ven_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('opt_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('opt_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('opt_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('market_context', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('modification_number', sa.Integer(), nullable=True),
    sa.Column('resource_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('windows', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('ven_id', 'opt_id')
    )
    op.create_index(op.f('ix_opt_schedules_event_id'), 'opt_schedules', ['event_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_opt_schedules_event_id'), table_name='opt_schedules')
    op.drop_table('opt_schedules')
