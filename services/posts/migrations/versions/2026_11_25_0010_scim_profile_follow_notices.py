"""SCIM userName and profile on people, directory indexes, follow notices

Revision ID: 0010_scim_profile_notices
Revises: 0009_feeds_pinned
Create Date: 2026-11-25 22:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0010_scim_profile_notices'
down_revision: Union[str, Sequence[str], None] = '0009_feeds_pinned'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('people', sa.Column('user_name', sa.String(length=320), nullable=True))
    op.add_column('people', sa.Column('scim_profile', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('people', sa.Column('scim_deleted_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('uq_people_lower_user_name', 'people', [sa.text('lower(user_name)')], unique=True)
    op.create_index('ix_people_lower_department', 'people', [sa.text('lower(department)')])
    op.create_index('ix_people_display_name_id', 'people', ['display_name', 'id'])
    op.create_table('follow_notices',
    sa.Column('follower_id', sa.Uuid(), nullable=False),
    sa.Column('followee_id', sa.Uuid(), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['followee_id'], ['people.id'], name=op.f('fk_follow_notices_followee_id_people')),
    sa.ForeignKeyConstraint(['follower_id'], ['people.id'], name=op.f('fk_follow_notices_follower_id_people')),
    sa.PrimaryKeyConstraint('follower_id', 'followee_id', name=op.f('pk_follow_notices'))
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('follow_notices')
    op.drop_index('ix_people_display_name_id', table_name='people')
    op.drop_index('ix_people_lower_department', table_name='people')
    op.drop_index('uq_people_lower_user_name', table_name='people')
    op.drop_column('people', 'scim_deleted_at')
    op.drop_column('people', 'scim_profile')
    op.drop_column('people', 'user_name')
