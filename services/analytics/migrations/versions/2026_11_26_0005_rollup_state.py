"""rollup_state: a version bumped by every transaction that changes the rollups (metrics cache key)

Revision ID: 0005_rollup_state
Revises: 0004_guards_infra
Create Date: 2026-11-26 00:45:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005_rollup_state'
down_revision: Union[str, Sequence[str], None] = '0004_guards_infra'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('rollup_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rollup_state'))
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('rollup_state')
