"""comments: @mentioned groups (as posts have)

Revision ID: 0012_comment_group_mentions
Revises: 0011_comment_edits_reactions
Create Date: 2026-11-26 01:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0012_comment_group_mentions'
down_revision: Union[str, Sequence[str], None] = '0011_comment_edits_reactions'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('comments', sa.Column('group_mentions', postgresql.ARRAY(sa.Uuid()), server_default='{}',
                                        nullable=False))


def downgrade() -> None:
    op.drop_column('comments', 'group_mentions')
