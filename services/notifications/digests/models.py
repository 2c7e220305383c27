from datetime import datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Index, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.notifications.db import Table
from shared.db import utcnow


class DigestRun(Table, table=True):
    """One digest per person and period ("2026-11-25", "2026-W48"): a rerun of the job sends nothing twice."""

    __tablename__ = "digest_runs"

    person_id: UUID = Field(primary_key=True)
    period: str = Field(primary_key=True, max_length=16)
    status: str = Field(default="sending", max_length=16)  # sending | sent | empty
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class MessageEmail(Table, table=True):
    """A member's unread messages in one conversation, waiting to go out as one email (see digests.messages)."""

    __tablename__ = "message_emails"
    __table_args__ = (Index("ix_message_emails_due", "due_at", postgresql_where=text("due_at IS NOT NULL")),
                      Index("ix_message_emails_sending", "sending_until",
                            postgresql_where=text("sending_until IS NOT NULL")))

    person_id: UUID = Field(primary_key=True)
    conversation_id: UUID = Field(primary_key=True)
    count: int = 0  # unread messages since the last email (`messages` keeps only the newest few)
    last_message_id: UUID | None = None
    messages: list[dict] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]"))
    due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # None: nothing pending
    # The email being sent: {count, last_message_id, messages} as claimed, kept until it is marked sent, so
    # a sender that dies mid-send loses nothing (its lease, sending_until, runs out and another sends it).
    sending: dict | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    sending_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
