from datetime import date, datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, Column, Date, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field
from uuid6 import uuid7

from services.posts.db import Table
from shared.db import utcnow

# One definition of every limit: the schemas import these, the columns are sized by them.
BODY_MAX = 20_000
TITLE_MAX = 200
COMMENT_MAX = 10_000
POLL_OPTION_MAX = 200
BADGE_MAX = 32
REACTION_MAX = 16
HASHTAG_MAX = 100
ATTACHMENTS_MAX = 10  # files on a post (an article's cover apart), on create and on edit


class Post(Table, table=True):
    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_author_created", "author_id", "created_at"),
        # Feeds read a group's or a person's newest posts by keyset (created_at, id).
        Index("ix_posts_group_created_id", "group_id", "created_at", "id", postgresql_where=text("deleted_at IS NULL")),
        Index("ix_posts_author_created_id", "author_id", "created_at", "id",
              postgresql_where=text("deleted_at IS NULL AND group_id IS NULL")),
        Index("ix_posts_announcements", "created_at", "id",
              postgresql_where=text("kind = 'announcement' AND group_id IS NULL AND deleted_at IS NULL")),
        Index("ix_posts_hashtags", "hashtags", postgresql_using="gin"),
        # Home feeds ask for announcements pinned now: few rows, found without scanning group posts.
        Index("ix_posts_pinned", "pinned_until",
              postgresql_where=text("kind = 'announcement' AND pinned_until IS NOT NULL AND deleted_at IS NULL")),
        Index("ix_posts_remind_at", "remind_at",
              postgresql_where=text("remind_at IS NOT NULL AND reminded_at IS NULL")),
    )

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    author_id: UUID = Field(foreign_key="people.id")
    kind: str = Field(max_length=32)
    title: str | None = Field(default=None, max_length=TITLE_MAX)  # articles
    body: str = Field(sa_column=Column(Text, nullable=False))  # Markdown as written
    body_html: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))  # sanitized
    audience: str = Field(max_length=16)  # company | followers | group
    group_id: UUID | None = Field(default=None, sa_column=Column(PG_UUID(as_uuid=True), ForeignKey("groups.id"),
                                                                   nullable=True, index=True))
    mentions: list[UUID] = Field(default_factory=list, sa_column=Column(ARRAY(PG_UUID(as_uuid=True)), nullable=False))
    group_mentions: list[UUID] = Field(default_factory=list, sa_column=Column(
        ARRAY(PG_UUID(as_uuid=True)), nullable=False, server_default="{}"))
    hashtags: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String(HASHTAG_MAX)), nullable=False))
    client: str | None = Field(default=None, max_length=80)
    cover_attachment_id: UUID | None = None  # articles
    # praise
    recipients: list[UUID] = Field(default_factory=list, sa_column=Column(
        ARRAY(PG_UUID(as_uuid=True)), nullable=False, server_default="{}"))
    badge: str | None = Field(default=None, max_length=BADGE_MAX)
    # polls
    poll_multiple: bool = False
    poll_closes_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # questions: the comment accepted as the answer
    best_answer_id: UUID | None = None
    # announcements
    pinned_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    must_read: bool = False
    ack_version: int = 1  # acknowledgements below this version no longer count
    # when those who have not acknowledged get an `announcement.reminder_due` (sent once per ack version)
    remind_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    reminded_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # edits and soft delete
    version: int = 1
    edited_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    deleted_by: UUID | None = None
    # counters kept in the same transaction as the rows they count (feeds read them without aggregating)
    comment_count: int = 0
    reaction_count: int = 0
    seen_by_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PostEdit(Table, table=True):
    """The text a post had before an edit (its visible history)."""

    __tablename__ = "post_edits"
    __table_args__ = (UniqueConstraint("post_id", "version"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    post_id: UUID = Field(foreign_key="posts.id", index=True)
    version: int
    title: str | None = Field(default=None, max_length=TITLE_MAX)
    body: str = Field(sa_column=Column(Text, nullable=False))
    # The version's attachments in order, its cover apart (None: an edit made before they were recorded).
    attachment_ids: list[UUID] | None = Field(default=None, sa_column=Column(ARRAY(PG_UUID(as_uuid=True)),
                                                                             nullable=True))
    cover_attachment_id: UUID | None = None
    edited_by: UUID = Field(foreign_key="people.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Comment(Table, table=True):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_post_created", "post_id", "created_at", "id"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    post_id: UUID = Field(foreign_key="posts.id")
    parent_id: UUID | None = Field(default=None, foreign_key="comments.id")  # one level of replies
    author_id: UUID = Field(foreign_key="people.id")
    body: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    mentions: list[UUID] = Field(default_factory=list, sa_column=Column(ARRAY(PG_UUID(as_uuid=True)), nullable=False))
    group_mentions: list[UUID] = Field(default_factory=list, sa_column=Column(
        ARRAY(PG_UUID(as_uuid=True)), nullable=False, server_default="{}"))
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    edited_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class CommentEdit(Table, table=True):
    """The text a comment had before an edit (its visible history), as `PostEdit` is for posts."""

    __tablename__ = "comment_edits"
    __table_args__ = (UniqueConstraint("comment_id", "version"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    comment_id: UUID = Field(foreign_key="comments.id", index=True)
    version: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    edited_by: UUID = Field(foreign_key="people.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


# The fixed set of reactions, on posts and comments alike (the API's ReactionKind is built from it).
REACTION_KINDS: tuple[str, ...] = ("like", "celebrate", "support", "insightful", "funny")
REACTION_CHECK = f"kind IN ({', '.join(repr(k) for k in REACTION_KINDS)})"


class CommentReaction(Table, table=True):
    """One reaction per person per comment, from the same fixed set as posts' reactions."""

    __tablename__ = "comment_reactions"
    __table_args__ = (CheckConstraint(REACTION_CHECK, name="kind"),)

    comment_id: UUID = Field(foreign_key="comments.id", primary_key=True)
    person_id: UUID = Field(foreign_key="people.id", primary_key=True, index=True)
    kind: str = Field(max_length=REACTION_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Reaction(Table, table=True):
    """One reaction per person per post; reacting again replaces the kind."""

    __tablename__ = "reactions"
    __table_args__ = (CheckConstraint(REACTION_CHECK, name="kind"),)

    post_id: UUID = Field(foreign_key="posts.id", primary_key=True)
    person_id: UUID = Field(foreign_key="people.id", primary_key=True, index=True)
    kind: str = Field(max_length=REACTION_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Bookmark(Table, table=True):
    __tablename__ = "bookmarks"
    __table_args__ = (Index("ix_bookmarks_person_created", "person_id", "created_at", "post_id"),)

    person_id: UUID = Field(foreign_key="people.id", primary_key=True)
    post_id: UUID = Field(foreign_key="posts.id", primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PollOption(Table, table=True):
    __tablename__ = "poll_options"
    __table_args__ = (UniqueConstraint("post_id", "position"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    post_id: UUID = Field(foreign_key="posts.id", index=True)
    position: int
    label: str = Field(max_length=POLL_OPTION_MAX)
    vote_count: int = 0


class PollVote(Table, table=True):
    __tablename__ = "poll_votes"

    option_id: UUID = Field(foreign_key="poll_options.id", primary_key=True)
    person_id: UUID = Field(foreign_key="people.id", primary_key=True)
    post_id: UUID = Field(foreign_key="posts.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Acknowledgement(Table, table=True):
    """A person acknowledged a must-read announcement at `version` (its ack_version then)."""

    __tablename__ = "acknowledgements"

    post_id: UUID = Field(foreign_key="posts.id", primary_key=True)
    person_id: UUID = Field(foreign_key="people.id", primary_key=True)
    version: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PostView(Table, table=True):
    """A person saw a post on a day (UTC); impressions beyond the first of the day are not kept."""

    __tablename__ = "post_views"

    post_id: UUID = Field(foreign_key="posts.id", primary_key=True)
    person_id: UUID = Field(foreign_key="people.id", primary_key=True)
    day: date = Field(sa_column=Column(Date, primary_key=True))
