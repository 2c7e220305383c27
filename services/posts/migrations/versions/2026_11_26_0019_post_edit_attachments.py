"""content: edits change attachments — each version's attachments in its history, their order on the post

Revision ID: 0019_post_edit_attachments
Revises: 0018_home_timeline
Create Date: 2026-11-26 06:55:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019_post_edit_attachments"
down_revision: Union[str, Sequence[str], None] = "0018_home_timeline"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # NULL on earlier edits: what attachments those versions had was not recorded.
    op.add_column("post_edits", sa.Column("attachment_ids", postgresql.ARRAY(sa.UUID()), nullable=True))
    op.add_column("post_edits", sa.Column("cover_attachment_id", sa.Uuid(), nullable=True))
    op.add_column("attachments", sa.Column("position", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("attachments", "position")
    op.drop_column("post_edits", "cover_attachment_id")
    op.drop_column("post_edits", "attachment_ids")
