from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, DateTime, UniqueConstraint
from sqlmodel import Field
from uuid6 import uuid7

from services.posts.db import Table
from shared.db import utcnow


class Follow(Table, table=True):
    __tablename__ = "follows"
    __table_args__ = (CheckConstraint("follower_id <> followee_id", name="not_self"),)

    follower_id: UUID = Field(foreign_key="people.id", primary_key=True)
    followee_id: UUID = Field(foreign_key="people.id", primary_key=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class FollowRequest(Table, table=True):
    """A pending request to follow a protected account; deleted once decided."""

    __tablename__ = "follow_requests"
    __table_args__ = (UniqueConstraint("follower_id", "followee_id"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    follower_id: UUID = Field(foreign_key="people.id")
    followee_id: UUID = Field(foreign_key="people.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class FollowNotice(Table, table=True):
    """When a follower last caused a follow notification to a person: repeats within a day are quiet."""

    __tablename__ = "follow_notices"

    follower_id: UUID = Field(foreign_key="people.id", primary_key=True)
    followee_id: UUID = Field(foreign_key="people.id", primary_key=True)
    notified_at: datetime = Field(sa_type=DateTime(timezone=True))
