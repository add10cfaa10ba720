"""open-ended events: dr_events.end_at is null for an event with duration 0 (rule 47)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 08:40:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.alter_column('dr_events', 'end_at', existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    # An open-ended event has no end to put back; it ends where it starts in the older schema.
    op.execute("UPDATE dr_events SET end_at = start_at WHERE end_at IS NULL")
    op.alter_column('dr_events', 'end_at', existing_type=sa.DateTime(timezone=True), nullable=False)
