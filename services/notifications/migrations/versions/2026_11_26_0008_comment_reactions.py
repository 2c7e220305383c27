"""comment reactions read model (a comment's author gets one grouped notification for its reactions)

Revision ID: 0008_comment_reactions
Revises: 0007_drop_event_unique
Create Date: 2026-11-26 04:05:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0008_comment_reactions'
down_revision: Union[str, Sequence[str], None] = '0007_drop_event_unique'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('comment_reactions',
    sa.Column('comment_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('post_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('comment_id', 'person_id', name=op.f('pk_comment_reactions'))
    )
    op.create_index('ix_comment_reactions_post', 'comment_reactions', ['post_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_comment_reactions_post', table_name='comment_reactions')
    op.drop_table('comment_reactions')
