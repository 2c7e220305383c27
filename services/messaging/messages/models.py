from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, DateTime, Index, Text, UniqueConstraint, text
from sqlmodel import Field
from uuid6 import uuid7

from services.messaging.db import Table
from shared.db import utcnow

BODY_MAX = 4000
CLIENT_MSG_ID_MAX = 64
EMOJI_MAX = 32


class Message(Table, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        # A retried send with the same client_msg_id finds the first one instead of creating a second.
        UniqueConstraint("conversation_id", "sender_id", "client_msg_id", name="uq_messages_client_msg_id"),
        Index("ix_messages_search", text("to_tsvector('simple', body)"), postgresql_using="gin"),
    )

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    conversation_id: UUID = Field(foreign_key="conversations.id", ondelete="CASCADE")
    seq: int = Field(sa_type=BigInteger)  # position in the conversation: commit order, no gaps per send
    sender_id: UUID
    client_msg_id: str | None = Field(default=None, max_length=CLIENT_MSG_ID_MAX)
    body: str = Field(default="", max_length=BODY_MAX)
    body_html: str = Field(default="", sa_type=Text)
    reply_to_id: UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    edited_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class MessageEdit(Table, table=True):
    """A previous text of an edited message (history kept)."""

    __tablename__ = "message_edits"

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    message_id: UUID = Field(foreign_key="messages.id", ondelete="CASCADE", index=True)
    body: str = Field(max_length=BODY_MAX)
    edited_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Reaction(Table, table=True):
    __tablename__ = "message_reactions"

    message_id: UUID = Field(primary_key=True, foreign_key="messages.id", ondelete="CASCADE")
    person_id: UUID = Field(primary_key=True)
    emoji: str = Field(primary_key=True, max_length=EMOJI_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
