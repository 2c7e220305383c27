from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, DateTime, Index
from sqlmodel import Field
from uuid6 import uuid7

from services.messaging.db import Table
from shared.db import utcnow

TITLE_MAX = 200
MAX_MEMBERS = 250
RECEIPTS_MAX_MEMBERS = 20  # read receipts only in conversations this small


class Conversation(Table, table=True):
    __tablename__ = "conversations"

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    kind: str = Field(max_length=16)  # direct | group
    title: str | None = Field(default=None, max_length=TITLE_MAX)
    # "<smaller id>:<larger id>" for a direct conversation: one per pair, enforced by the unique index.
    direct_key: str | None = Field(default=None, max_length=80, unique=True)
    created_by: UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    last_seq: int = Field(default=0, sa_type=BigInteger)  # the newest message's seq (per-conversation order)
    last_message_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    member_count: int = 0


class Member(Table, table=True):
    __tablename__ = "conversation_members"
    __table_args__ = (Index("ix_conversation_members_person", "person_id", "conversation_id"),)

    conversation_id: UUID = Field(primary_key=True, foreign_key="conversations.id", ondelete="CASCADE")
    person_id: UUID = Field(primary_key=True)
    role: str = Field(default="member", max_length=16)  # admin | member
    joined_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    # Messages with seq <= joined_seq were sent before the person joined (history is shared anyway).
    last_read_seq: int = Field(default=0, sa_type=BigInteger)
    last_read_message_id: UUID | None = None
    last_read_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Preference(Table, table=True):
    """A person's messaging settings (read receipts under the `user_choice` policy)."""

    __tablename__ = "messaging_preferences"

    person_id: UUID = Field(primary_key=True)
    read_receipts: bool = True
