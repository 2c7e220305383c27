"""post_viewers: the post's creation day and author, indexed by viewer and day (views of non-members per window)

Revision ID: 0007_post_viewers_post_day
Revises: 0006_author_day
Create Date: 2026-11-26 04:35:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0007_post_viewers_post_day'
down_revision: Union[str, Sequence[str], None] = '0006_author_day'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('post_viewers', sa.Column('post_day', sa.Date(), nullable=True))
    op.add_column('post_viewers', sa.Column('author_id', sa.Uuid(), nullable=True))
    op.execute("""UPDATE post_viewers v SET post_day = (p.created_at AT TIME ZONE 'UTC')::date, author_id = p.author_id
                  FROM posts p WHERE p.post_id = v.post_id""")
    op.create_index('ix_post_viewers_person_id_post_day', 'post_viewers', ['person_id', 'post_day'], unique=False,
                    postgresql_include=['author_id'])
    op.drop_index('ix_post_viewers_person_id_post_id', table_name='post_viewers')


def downgrade() -> None:
    """Downgrade schema."""
    op.create_index('ix_post_viewers_person_id_post_id', 'post_viewers', ['person_id', 'post_id'], unique=False)
    op.drop_index('ix_post_viewers_person_id_post_day', table_name='post_viewers')
    op.drop_column('post_viewers', 'author_id')
    op.drop_column('post_viewers', 'post_day')
