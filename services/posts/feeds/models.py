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


class HomeTimeline(Table, table=True):
    """A person's materialized home timeline: its entries newer than the horizon are complete (no horizon: all
    are there). Kept by triggers (migration 0018_home_timeline); no row: home reads its sources directly."""

    __tablename__ = "home_timelines"

    person_id: UUID = Field(foreign_key="people.id", primary_key=True)
    horizon_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    horizon_id: UUID | None = Field(default=None)


class HomeEntry(Table, table=True):
    """A candidate for a person's home feed (a post of someone they follow, of a group they joined, or their
    own) — never a permission: home applies the visibility rule to every entry. The key is the page's scan."""

    __tablename__ = "home_entries"

    person_id: UUID = Field(primary_key=True)
    created_at: datetime = Field(primary_key=True, sa_type=DateTime(timezone=True))
    post_id: UUID = Field(primary_key=True)
