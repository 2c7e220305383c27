"""Event payloads of the content domain (see shared/events/payloads.py for the conventions).

Posts, comments, reactions, polls, answers, praise, bookmarks, tags and announcements, on `social.v1`.
`post.created` predates this module and stays in payloads.py.
"""

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from shared.events.base import EventData


class PostUpdated(EventData):
    """An edit: the previous text is kept in the post's history under `version - 1`."""

    TOPIC = "social"
    type: Literal["hearth.post.updated"] = "hearth.post.updated"
    post_id: UUID
    author_id: UUID
    editor_id: UUID
    version: int
    excerpt: str
    hashtags: list[str] = []
    requires_acknowledgement: bool = False  # a must-read announcement that readers must acknowledge again
    # What the edit changed, of body, title, attachment_ids, cover_attachment_id, pinned_until, remind_at
    # ([] from producers before it was carried).
    changed: list[str] = []
    attachment_ids: list[UUID] | None = None  # the attachments after the edit, in order, when they changed
    cover_attachment_id: UUID | None = None  # the cover after the edit (see `changed`: None may mean removed)


class PostDeleted(EventData):
    TOPIC = "social"
    type: Literal["hearth.post.deleted"] = "hearth.post.deleted"
    post_id: UUID
    author_id: UUID
    deleted_by: UUID
    by_moderator: bool = False


class CommentCreated(EventData):
    """`mentions` holds only people who can read the post (a mention never leaks it)."""

    TOPIC = "social"
    type: Literal["hearth.comment.created"] = "hearth.comment.created"
    comment_id: UUID
    post_id: UUID
    post_author_id: UUID
    author_id: UUID
    parent_id: UUID | None = None
    parent_author_id: UUID | None = None
    excerpt: str
    mentions: list[UUID] = []
    created_at: datetime


class CommentUpdated(EventData):
    """An edit: the previous text is kept in the comment's history under `version - 1`."""

    TOPIC = "social"
    type: Literal["hearth.comment.updated"] = "hearth.comment.updated"
    comment_id: UUID
    post_id: UUID
    author_id: UUID
    excerpt: str
    version: int | None = None  # None from producers before comments had versions


class CommentDeleted(EventData):
    TOPIC = "social"
    type: Literal["hearth.comment.deleted"] = "hearth.comment.deleted"
    comment_id: UUID
    post_id: UUID
    author_id: UUID
    deleted_by: UUID


class ReactionAdded(EventData):
    """Also sent when someone changes their reaction's kind (`previous_kind` is then set)."""

    TOPIC = "social"
    type: Literal["hearth.reaction.added"] = "hearth.reaction.added"
    post_id: UUID
    post_author_id: UUID
    person_id: UUID
    kind: str
    previous_kind: str | None = None


class ReactionRemoved(EventData):
    TOPIC = "social"
    type: Literal["hearth.reaction.removed"] = "hearth.reaction.removed"
    post_id: UUID
    post_author_id: UUID
    person_id: UUID
    kind: str


class CommentReactionAdded(EventData):
    """A reaction on a comment (same kinds as on posts); also sent when the kind changes (`previous_kind`)."""

    TOPIC = "social"
    type: Literal["hearth.comment.reaction_added"] = "hearth.comment.reaction_added"
    comment_id: UUID
    post_id: UUID
    comment_author_id: UUID
    person_id: UUID
    kind: str
    previous_kind: str | None = None
    excerpt: str | None = None  # the comment's text, shortened; None from producers before it was carried


class CommentReactionRemoved(EventData):
    TOPIC = "social"
    type: Literal["hearth.comment.reaction_removed"] = "hearth.comment.reaction_removed"
    comment_id: UUID
    post_id: UUID
    comment_author_id: UUID
    person_id: UUID
    kind: str


class PollVoted(EventData):
    TOPIC = "social"
    type: Literal["hearth.poll.voted"] = "hearth.poll.voted"
    post_id: UUID
    post_author_id: UUID
    person_id: UUID
    option_ids: list[UUID]


class BestAnswerAccepted(EventData):
    TOPIC = "social"
    type: Literal["hearth.question.answer_accepted"] = "hearth.question.answer_accepted"
    post_id: UUID
    comment_id: UUID
    answer_author_id: UUID
    accepted_by: UUID


class PraiseGiven(EventData):
    """Recipients here can all read the praise post."""

    TOPIC = "social"
    type: Literal["hearth.praise.given"] = "hearth.praise.given"
    post_id: UUID
    author_id: UUID
    recipients: list[UUID]
    badge: str | None = None


class PostBookmarked(EventData):
    TOPIC = "social"
    type: Literal["hearth.post.bookmarked"] = "hearth.post.bookmarked"
    post_id: UUID
    person_id: UUID
    bookmarked: bool  # false: the bookmark was removed


class TagFollowed(EventData):
    TOPIC = "social"
    type: Literal["hearth.tag.followed"] = "hearth.tag.followed"
    tag: str
    person_id: UUID
    following: bool  # false: unfollowed


class GroupMuted(EventData):
    TOPIC = "social"
    type: Literal["hearth.group.muted"] = "hearth.group.muted"
    group_id: UUID
    person_id: UUID
    muted: bool  # false: unmuted


class AnnouncementAcknowledged(EventData):
    TOPIC = "social"
    type: Literal["hearth.announcement.acknowledged"] = "hearth.announcement.acknowledged"
    post_id: UUID
    person_id: UUID
    version: int


class AnnouncementReminderDue(EventData):
    """People in the audience who have not acknowledged a must-read announcement (notifications reminds them).

    Large audiences are split into several events of at most 1,000 people each."""

    TOPIC = "social"
    type: Literal["hearth.announcement.reminder_due"] = "hearth.announcement.reminder_due"
    post_id: UUID
    author_id: UUID
    version: int
    excerpt: str
    person_ids: list[UUID]
    day: date | None = None
