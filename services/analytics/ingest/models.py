"""The event log (partitioned by UTC day) and the rollups kept from it.

Rollups are either per day (person, person × client, group × person, post, search query) or sets
with the first time something happened (who viewed / responded to / acknowledged a post), so that
late and out-of-order events land in the right place and a recompute can rebuild a date range.
"""

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime, Index
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, JSONB
from sqlmodel import Field

from services.analytics.db import Table

TZ = DateTime(timezone=True)


class EventLog(Table, table=True):
    """Every event analytics has seen, once (primary key: day + event id, the day from the event time).

    Partitioned by range of `day`; the partitions live in the `event_log_partitions` schema and are
    created ahead by the service (see ingest.partitions)."""

    __tablename__ = "event_log"
    __table_args__ = {"postgresql_partition_by": "RANGE (day)"}

    day: date = Field(primary_key=True)
    event_id: UUID = Field(primary_key=True)
    type: str = Field(max_length=100)
    time: datetime = Field(sa_type=TZ)
    actor_id: UUID | None = None
    client: str | None = Field(default=None, max_length=80)
    subject: str = Field(max_length=200)
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))


class Person(Table, table=True):
    """Analytics' own people read model: what segments and membership over time need."""

    __tablename__ = "people"

    id: UUID = Field(primary_key=True)
    display_name: str = Field(max_length=200)
    department: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    manager_id: UUID | None = None
    hire_date: date | None = None
    leader: bool = False
    official: bool = False
    active: bool = True
    provisioned_at: datetime = Field(sa_type=TZ)
    deactivated_at: datetime | None = Field(default=None, sa_type=TZ)
    updated_at: datetime = Field(sa_type=TZ)


class PersonDay(Table, table=True):
    """Activity and contribution events per person per UTC day (a row means: active that day)."""

    __tablename__ = "person_day"

    day: date = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    activity: int = 0
    contributions: int = 0


class PersonBits(Table, table=True):
    """The same days packed: bit i of `active` = active on day period*32+i (days since 2000-01-01).

    Windowed distinct counts (DAU/WAU/MAU, engaged, segments) read ~3 rows per person instead of ~55."""

    __tablename__ = "person_bits"

    person_id: UUID = Field(primary_key=True)
    period: int = Field(primary_key=True)
    active: int = Field(default=0, sa_type=BigInteger)
    contrib: int = Field(default=0, sa_type=BigInteger)


class PersonClientDay(Table, table=True):
    __tablename__ = "person_client_day"

    day: date = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    client: str = Field(primary_key=True, max_length=16)
    activity: int = 0


class Post(Table, table=True):
    """A post as analytics knows it; `reach` and `first_response_at` are kept from the sets below."""

    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_created_at", "created_at"), Index("ix_posts_group_id", "group_id"))

    post_id: UUID = Field(primary_key=True)
    author_id: UUID | None = None
    kind: str | None = Field(default=None, max_length=32)
    audience: str | None = Field(default=None, max_length=16)
    group_id: UUID | None = None
    client: str | None = Field(default=None, max_length=16)
    created_at: datetime | None = Field(default=None, sa_type=TZ)
    reach: int = 0
    first_response_at: datetime | None = Field(default=None, sa_type=TZ)


class PostDay(Table, table=True):
    """Per post per day: views, reactions, comments and acknowledgements (events, not people)."""

    __tablename__ = "post_day"

    post_id: UUID = Field(primary_key=True)
    day: date = Field(primary_key=True)
    views: int = 0
    reactions: int = 0
    comments: int = 0
    acks: int = 0


class Comment(Table, table=True):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_created_at", "created_at"),)

    comment_id: UUID = Field(primary_key=True)
    post_id: UUID | None = None
    author_id: UUID | None = None
    created_at: datetime = Field(sa_type=TZ)


class AuthorDay(Table, table=True):
    """Content created per author per UTC day: what `overview` and `segments` read instead of every post
    and comment of the window (posts and comments as analytics knows them, summed).

    Kept by statement triggers on `posts` and `comments` (every change, whichever statement makes it:
    new posts and comments, reach and first response recounted, recompute's deletes), which note deltas
    in a temporary table; `flush_author_day` applies them in one upsert ordered by key, last in the
    transaction, so concurrent writers lock these rows in one order. Authors unknown to the event are
    the nil id. Whether an author is an official account is read from `people` at query time."""

    __tablename__ = "author_day"

    day: date = Field(primary_key=True)
    author_id: UUID = Field(primary_key=True)
    posts: int = 0
    organic_posts: int = 0  # posts that are not announcements
    comments: int = 0
    reach: int = Field(default=0, sa_type=BigInteger)  # sum of the posts' reach (viewers other than the author)
    responded: int = 0  # posts with a comment or reaction from someone else within 24 h


class ContentDay(Table, table=True):
    """author_day summed per day over every author (flushed with it, in the same statement): what the
    overview's totals read; official accounts' organic content is taken out at query time from author_day."""

    __tablename__ = "content_day"

    day: date = Field(primary_key=True)
    posts: int = 0
    organic_posts: int = 0
    comments: int = 0
    reach: int = Field(default=0, sa_type=BigInteger)
    responded: int = 0


class ResponseDay(Table, table=True):
    """Per UTC day of the posts' creation, the seconds to first response of the posts responded to within
    24 hours (in no order): the overview's median (percentile_cont over the window's values, exact) reads one
    compact row per day instead of every post. Kept by statement triggers on posts (new values minus old,
    applied at the end of the transaction by response_day_flush(), days locked in order) and rebuilt by
    recompute; migration 0009."""

    __tablename__ = "response_day"

    day: date = Field(primary_key=True)
    seconds: list[float] = Field(sa_column=Column(ARRAY(DOUBLE_PRECISION), nullable=False))


class PostViewer(Table, table=True):
    """Who viewed a post, first time; with the post's creation day and author once the post is known, so
    the views of people who are not members are found for a window's posts from the viewers' side."""

    __tablename__ = "post_viewers"
    __table_args__ = (Index("ix_post_viewers_person_id_post_day", "person_id", "post_day",
                            postgresql_include=["author_id"]),)

    post_id: UUID = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    first_at: datetime = Field(sa_type=TZ)
    post_day: date | None = None  # UTC day the post was created
    author_id: UUID | None = None


class PostResponder(Table, table=True):
    """Who commented on or reacted to a post, first time."""

    __tablename__ = "post_responders"
    __table_args__ = (Index("ix_post_responders_first_at", "first_at"),)

    post_id: UUID = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    first_at: datetime = Field(sa_type=TZ)


class PostAck(Table, table=True):
    __tablename__ = "post_acks"

    post_id: UUID = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    first_at: datetime = Field(sa_type=TZ)


class GroupPersonDay(Table, table=True):
    """Activity inside a group (on its posts) per person per day."""

    __tablename__ = "group_person_day"

    day: date = Field(primary_key=True)
    group_id: UUID = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    activity: int = 0
    contributions: int = 0


class Group(Table, table=True):
    __tablename__ = "groups"

    group_id: UUID = Field(primary_key=True)
    name: str = Field(max_length=200)
    official: bool = False
    archived: bool = False


class GroupMember(Table, table=True):
    __tablename__ = "group_members"

    group_id: UUID = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    role: str = Field(max_length=16)


class SearchDay(Table, table=True):
    __tablename__ = "search_day"

    day: date = Field(primary_key=True)
    query: str = Field(primary_key=True, max_length=200)
    searches: int = 0
    zero_results: int = 0


class RollupState(Table, table=True):
    """One row: a version every transaction that changes the rollups bumps, last, so that metrics can
    cache a window's answer and know, with one primary-key read, whether it still holds."""

    __tablename__ = "rollup_state"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # always 1
    version: int = Field(default=0, sa_type=BigInteger)
