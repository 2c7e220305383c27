"""notifications: drop the unique (recipient, kind, source event) index (consumer dedupe covers it)

Revision ID: 0007_drop_event_unique
Revises: 0006_message_emails
Create Date: 2026-11-26 01:05:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = '0007_drop_event_unique'
down_revision: Union[str, Sequence[str], None] = '0006_message_emails'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.drop_constraint('uq_notifications_recipient_id', 'notifications', type_='unique')


def downgrade() -> None:
    op.create_unique_constraint('uq_notifications_recipient_id', 'notifications',
                                ['recipient_id', 'kind', 'source_event_id'])
