from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime
from sqlmodel import Field

from services.posts.content.models import HASHTAG_MAX
from services.posts.db import Table
from shared.db import utcnow


class TagFollow(Table, table=True):
    """Posts with this hashtag reach the person's home feed."""

    __tablename__ = "tag_follows"

    person_id: UUID = Field(foreign_key="people.id", primary_key=True)
    tag: str = Field(max_length=HASHTAG_MAX, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class GroupMute(Table, table=True):
    """A group whose posts stay out of the person's home feed (they remain a member)."""

    __tablename__ = "group_mutes"

    person_id: UUID = Field(foreign_key="people.id", primary_key=True)
    group_id: UUID = Field(foreign_key="groups.id", primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
