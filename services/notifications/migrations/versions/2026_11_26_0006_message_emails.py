"""message emails: a member's unread messages per conversation, batched into one email

Revision ID: 0006_message_emails
Revises: 0005_notifications_presence
Create Date: 2026-11-26 00:55:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision: str = '0006_message_emails'
down_revision: Union[str, Sequence[str], None] = '0005_notifications_presence'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('message_emails',
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_message_id', sa.Uuid(), nullable=True),
    sa.Column('messages', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('person_id', 'conversation_id', name=op.f('pk_message_emails'))
    )
    op.create_index('ix_message_emails_due', 'message_emails', ['due_at'], unique=False,
                    postgresql_where=sa.text('due_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_message_emails_due', table_name='message_emails', postgresql_where=sa.text('due_at IS NOT NULL'))
    op.drop_table('message_emails')
