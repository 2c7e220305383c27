from datetime import datetime
from uuid import UUID

from sqlalchemy import ARRAY, Column, DateTime, Index, text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field
from uuid6 import uuid7

from services.notifications.db import Table
from shared.db import utcnow

KIND_MAX = 32
EXCERPT_MAX = 300


class Notification(Table, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        # No unique (recipient, kind, source event): the consumers' dedupe (processed events, in the same
        # transaction) already keeps a replayed event from notifying twice, and that index plus ON CONFLICT
        # was half the cost of a 10,000-row announcement. Four indexes per row remain, each with a reader.
        # Grouped notifications (reactions on one post) are one row per recipient, updated in place.
        Index("uq_notifications_group_key", "recipient_id", "group_key", unique=True,
              postgresql_where=text("group_key IS NOT NULL")),
        Index("ix_notifications_recipient_updated", "recipient_id", "updated_at", "id"),
        Index("ix_notifications_unread", "recipient_id", postgresql_where=text("read_at IS NULL")),
        Index("ix_notifications_post", "post_id", postgresql_where=text("post_id IS NOT NULL")),
        Index("ix_notifications_comment", "comment_id", postgresql_where=text("comment_id IS NOT NULL")),
    )

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    recipient_id: UUID
    kind: str = Field(max_length=KIND_MAX)  # see preferences.defaults.KINDS
    actor_id: UUID | None = None
    actor_count: int = 1  # grouped rows: how many distinct people ("Ana and 4 others")
    actor_ids: list[UUID] = Field(default_factory=list, sa_column=Column(ARRAY(PG_UUID(as_uuid=True)), nullable=False,
                                                                         server_default="{}"))
    subject_type: str = Field(max_length=32)  # post | comment | person | group | conversation
    subject_id: UUID
    excerpt: str = Field(default="", max_length=EXCERPT_MAX)
    group_key: str | None = Field(default=None, max_length=100)
    # What the notification is about, for mutes and for removing it when its source goes away.
    post_id: UUID | None = None
    comment_id: UUID | None = None
    group_id: UUID | None = None
    conversation_id: UUID | None = None
    source_event_id: UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    read_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
