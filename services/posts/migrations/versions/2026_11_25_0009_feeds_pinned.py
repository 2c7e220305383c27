"""feeds: a partial index for pinned announcements

Revision ID: 0009_feeds_pinned
Revises: 0008_search_content
Create Date: 2026-11-25 22:05:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009_feeds_pinned"
down_revision: Union[str, Sequence[str], None] = "0008_search_content"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

WHERE = "kind = 'announcement' AND pinned_until IS NOT NULL AND deleted_at IS NULL"


def upgrade() -> None:
    op.create_index("ix_posts_pinned", "posts", ["pinned_until"], unique=False, postgresql_where=sa.text(WHERE))


def downgrade() -> None:
    op.drop_index("ix_posts_pinned", table_name="posts", postgresql_where=sa.text(WHERE))
