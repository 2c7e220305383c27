from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime, Index, UniqueConstraint, text
from sqlmodel import Field
from uuid6 import uuid7

from services.notifications.db import Table
from shared.db import utcnow


class Notification(Table, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        # One notification per recipient, kind and source event: a replayed event cannot notify twice.
        UniqueConstraint("recipient_id", "kind", "source_event_id"),
        Index("ix_notifications_recipient_created", "recipient_id", "created_at", "id"),
        Index("ix_notifications_unread", "recipient_id", postgresql_where=text("read_at IS NULL")),
    )

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    recipient_id: UUID
    kind: str = Field(max_length=32)  # mention | comment | reaction | follow | ...
    actor_id: UUID | None = None
    subject_type: str = Field(max_length=32)  # post | comment | person | group
    subject_id: UUID
    excerpt: str = Field(default="", max_length=300)
    source_event_id: UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    read_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
