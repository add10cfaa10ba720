"""opt schedules keep the oadrDeviceClass they are for (P1_2030)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:30:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision: str = '0008'
down_revision: Union[str, None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('opt_schedules', sa.Column('device_classes', postgresql.JSONB(astext_type=sa.Text()),
                                             server_default='[]', nullable=False))


def downgrade() -> None:
    op.drop_column('opt_schedules', 'device_classes')
