"""Read models from social.v1 that decide who is notified: groups and their members, posts, reactions (on both)."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime, Index
from sqlmodel import Field

from services.notifications.db import Table
from shared.db import utcnow


class KnownGroup(Table, table=True):
    __tablename__ = "known_groups"

    id: UUID = Field(primary_key=True)
    name: str = Field(max_length=200)
    visibility: str = Field(max_length=16)  # public | private | secret
    all_company: bool = False
    archived: bool = False
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class GroupMember(Table, table=True):
    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_person", "person_id"),)

    group_id: UUID = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    role: str = Field(max_length=16)  # owner | admin | member


class KnownPost(Table, table=True):
    """Enough of a post to group reactions, find the top posts of a group for digests and remove its notifications."""

    __tablename__ = "known_posts"
    __table_args__ = (Index("ix_known_posts_group_created", "group_id", "created_at"),)

    id: UUID = Field(primary_key=True)
    author_id: UUID
    kind: str = Field(max_length=32)
    audience: str = Field(max_length=16)
    group_id: UUID | None = None
    excerpt: str = Field(default="", max_length=300)
    reactions: int = 0
    comments: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PostReaction(Table, table=True):
    __tablename__ = "post_reactions"

    post_id: UUID = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class CommentReaction(Table, table=True):
    """Who reacted to a comment (the comment's author gets one grouped notification, like a post's)."""

    __tablename__ = "comment_reactions"
    __table_args__ = (Index("ix_comment_reactions_post", "post_id"),)

    comment_id: UUID = Field(primary_key=True)
    person_id: UUID = Field(primary_key=True)
    post_id: UUID  # a deleted post takes its comments' reactions with it
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Presence(Table, table=True):
    """Messaging's presence (from messaging.v1): a new message is pushed only to people not online."""

    __tablename__ = "messaging_presence"

    person_id: UUID = Field(primary_key=True)
    status: str = Field(max_length=16)  # online | away | offline
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
