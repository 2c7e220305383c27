"""message emails: the batch being sent is kept under a lease until marked sent (a crash mid-send loses nothing)

Revision ID: 0009_message_email_lease
Revises: 0008_comment_reactions
Create Date: 2026-11-26 04:10:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision: str = '0009_message_email_lease'
down_revision: Union[str, Sequence[str], None] = '0008_comment_reactions'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('message_emails', sa.Column('sending', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('message_emails', sa.Column('sending_until', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_message_emails_sending', 'message_emails', ['sending_until'], unique=False,
                    postgresql_where=sa.text('sending_until IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_message_emails_sending', table_name='message_emails',
                  postgresql_where=sa.text('sending_until IS NOT NULL'))
    op.drop_column('message_emails', 'sending_until')
    op.drop_column('message_emails', 'sending')
