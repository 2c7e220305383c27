"""comments: edit history (comment_edits, comments.version) and reactions on comments

Revision ID: 0011_comment_edits_reactions
Revises: 0010_scim_profile_notices
Create Date: 2026-11-26 00:55:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0011_comment_edits_reactions'
down_revision: Union[str, Sequence[str], None] = '0010_scim_profile_notices'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('comments', sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    op.create_table('comment_edits',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('comment_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('edited_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_comment_edits_comment_id_comments')),
    sa.ForeignKeyConstraint(['edited_by'], ['people.id'], name=op.f('fk_comment_edits_edited_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comment_edits')),
    sa.UniqueConstraint('comment_id', 'version', name=op.f('uq_comment_edits_comment_id'))
    )
    op.create_index(op.f('ix_comment_edits_comment_id'), 'comment_edits', ['comment_id'], unique=False)
    op.create_table('comment_reactions',
    sa.Column('comment_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('like', 'celebrate', 'support', 'insightful', 'funny')",
                       name=op.f('ck_comment_reactions_kind')),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_comment_reactions_comment_id_comments')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_comment_reactions_person_id_people')),
    sa.PrimaryKeyConstraint('comment_id', 'person_id', name=op.f('pk_comment_reactions'))
    )
    op.create_index(op.f('ix_comment_reactions_person_id'), 'comment_reactions', ['person_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_comment_reactions_person_id'), table_name='comment_reactions')
    op.drop_table('comment_reactions')
    op.drop_index(op.f('ix_comment_edits_comment_id'), table_name='comment_edits')
    op.drop_table('comment_edits')
    op.drop_column('comments', 'version')
