from datetime import datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Index, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field
from uuid6 import uuid7

from services.posts.db import Table
from shared.db import utcnow


class Post(Table, table=True):
    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_author_created", "author_id", "created_at"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    author_id: UUID = Field(foreign_key="people.id")
    kind: str = Field(max_length=32)
    body: str = Field(sa_column=Column(Text, nullable=False))  # Markdown as written
    audience: str = Field(max_length=16)  # company | followers | group
    group_id: UUID | None = Field(default=None, index=True)
    mentions: list[UUID] = Field(default_factory=list, sa_column=Column(ARRAY(PG_UUID(as_uuid=True)), nullable=False))
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String(100)), nullable=False))
    client: str | None = Field(default=None, max_length=80)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
