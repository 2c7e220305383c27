from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from services.posts.content.models import (ATTACHMENTS_MAX, BODY_MAX, COMMENT_MAX, POLL_OPTION_MAX, REACTION_KINDS,
                                           TITLE_MAX)
from services.posts.people.api import PersonSummary
from shared.types import SafeStr, check_text

PostKind = Literal["update", "question", "praise", "announcement", "poll", "article"]
ReactionKind = Literal[REACTION_KINDS]
Badge = Literal["thank-you", "team-player", "above-and-beyond", "innovator", "mentor", "customer-hero"]
PollLabel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=POLL_OPTION_MAX),
                     AfterValidator(check_text)]
POLL_MIN, POLL_MAX = 2, 10


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value


class PollCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    options: list[PollLabel] = Field(min_length=POLL_MIN, max_length=POLL_MAX)
    multiple: bool = False
    closes_at: datetime | None = None

    @field_validator("options")
    @classmethod
    def _distinct(cls, options: list[str]) -> list[str]:
        if len({o.casefold() for o in options}) != len(options):
            raise ValueError("options must differ")
        return options

    @field_validator("closes_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone")
        return value


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"kind": "update", "body": "Shipped the new onboarding flow with @maria #launch",
                      "audience": "company"},
                     {"kind": "poll", "body": "Where should the offsite be?",
                      "poll": {"options": ["Lisbon", "Berlin"], "multiple": False}}]})

    kind: PostKind = "update"
    title: SafeStr | None = Field(default=None, min_length=1, max_length=TITLE_MAX)  # articles
    body: SafeStr = Field(min_length=1, max_length=BODY_MAX)
    # Omitted: "group" when `group_id` is given (a group post is for the group's readers), else "followers"
    # for a protected account and "company" for anyone else.
    audience: Literal["company", "followers", "group"] | None = None
    group_id: UUID | None = None
    cover_attachment_id: UUID | None = None
    attachment_ids: list[UUID] = Field(default_factory=list, max_length=ATTACHMENTS_MAX)  # shown in this order
    poll: PollCreate | None = None
    recipients: list[UUID] = Field(default_factory=list, max_length=50)  # praise; default: the @mentioned
    badge: Badge | None = None
    pinned_until: datetime | None = None  # announcements
    must_read: bool = False
    remind_at: datetime | None = None  # must-read: remind who has not acknowledged by then

    _blank = field_validator("body", "title")(lambda cls, v: _not_blank(v))

    @model_validator(mode="after")
    def _shape(self):
        if self.group_id is not None and self.audience not in (None, "group"):
            raise ValueError("a group post's audience is the group")
        if self.group_id is None and self.audience == "group":
            raise ValueError("audience group needs a group_id")
        self.audience = self.audience or ("group" if self.group_id else None)  # else the author's default
        if (self.kind == "poll") != (self.poll is not None):
            raise ValueError("a poll post needs `poll`, and only a poll post has one")
        if self.kind == "article" and not self.title:
            raise ValueError("an article needs a title")
        if self.kind != "article" and (self.title or self.cover_attachment_id):
            raise ValueError("only articles have a title and a cover")
        if self.kind != "praise" and (self.recipients or self.badge):
            raise ValueError("only praise has recipients and a badge")
        if self.kind != "announcement" and (self.pinned_until or self.must_read):
            raise ValueError("only announcements are pinned or must-read")
        if self.remind_at is not None and not self.must_read:
            raise ValueError("only must-read announcements have reminders")
        if any(t is not None and t.tzinfo is None for t in (self.pinned_until, self.remind_at)):
            raise ValueError("times need a time zone")
        return self


class PostUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: SafeStr | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    body: SafeStr | None = Field(default=None, min_length=1, max_length=BODY_MAX)
    # The complete new list, in the order to show ([] removes them all; omitted or null: unchanged): your own
    # unused uploads and the post's current attachments. Those left out are detached from the post.
    attachment_ids: list[UUID] | None = Field(default=None, max_length=ATTACHMENTS_MAX)
    # Articles: a new cover (the old one is detached unless listed in attachment_ids); null removes it.
    cover_attachment_id: UUID | None = None
    pinned_until: datetime | None = None
    remind_at: datetime | None = None
    # A must-read announcement's edit can ask everyone to acknowledge it again.
    require_reacknowledgement: bool = False

    _blank = field_validator("body", "title")(lambda cls, v: _not_blank(v))


class PollOptionPublic(BaseModel):
    id: UUID
    label: str
    votes: int | None = None  # None while the results are hidden from the caller


class PollPublic(BaseModel):
    multiple: bool
    closes_at: datetime | None
    closed: bool
    options: list[PollOptionPublic]
    my_votes: list[UUID] = []
    results_visible: bool
    voters: int | None = None


class AttachmentSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    filename: str
    content_type: str
    size: int
    width: int | None
    height: int | None


class PostPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    author_id: UUID
    author: PersonSummary | None = None
    kind: str
    title: str | None = None
    body: str
    body_html: str
    audience: str
    group_id: UUID | None
    mentions: list[UUID]
    group_mentions: list[UUID] = []
    hashtags: list[str]
    cover_attachment_id: UUID | None = None
    attachments: list[AttachmentSummary] = []
    recipients: list[UUID] = []
    badge: str | None = None
    poll: PollPublic | None = None
    best_answer_id: UUID | None = None
    pinned_until: datetime | None = None
    pinned: bool = False
    must_read: bool = False
    remind_at: datetime | None = None
    version: int = 1
    ack_version: int = 1
    edited_at: datetime | None = None
    comment_count: int = 0
    reaction_counts: dict[str, int] = {}
    seen_by_count: int = 0
    my_reaction: str | None = None
    bookmarked: bool = False
    acknowledged: bool | None = None  # None: nothing to acknowledge
    created_at: datetime
    updated_at: datetime


class PostEditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    title: str | None
    body: str
    # The version's attachments in order, its cover apart (null: an edit from before they were recorded).
    attachment_ids: list[UUID] | None = None
    cover_attachment_id: UUID | None = None
    edited_by: UUID
    created_at: datetime


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: SafeStr = Field(min_length=1, max_length=COMMENT_MAX)
    parent_id: UUID | None = None  # a reply to a top-level comment

    _blank = field_validator("body")(lambda cls, v: _not_blank(v))


class CommentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: SafeStr = Field(min_length=1, max_length=COMMENT_MAX)

    _blank = field_validator("body")(lambda cls, v: _not_blank(v))


class CommentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    post_id: UUID
    parent_id: UUID | None
    author_id: UUID
    author: PersonSummary | None = None
    body: str
    body_html: str
    mentions: list[UUID]
    group_mentions: list[UUID] = []
    version: int = 1
    edited_at: datetime | None
    deleted: bool = False
    reaction_counts: dict[str, int] = {}  # by kind, only kinds someone chose
    my_reaction: str | None = None
    created_at: datetime


class CommentEditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int  # the version this text was, before the edit that replaced it
    body: str
    edited_by: UUID
    created_at: datetime  # when it was replaced


class ReactionSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReactionKind


class VoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    option_ids: list[UUID] = Field(min_length=1, max_length=POLL_MAX)


class BestAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment_id: UUID


class ViewBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    post_ids: list[UUID] = Field(min_length=1, max_length=100)


class ViewsRecorded(BaseModel):
    recorded: int  # first views of the day among the batch (repeats and unreadable posts are ignored)


class AckState(BaseModel):
    post_id: UUID
    version: int
    acknowledged: bool


class AckPerson(BaseModel):
    person: PersonSummary
    acknowledged_at: datetime | None


class AckSegment(BaseModel):
    value: str | None
    audience: int
    acknowledged: int
    rate: float


class AckSummary(BaseModel):
    post_id: UUID
    version: int
    audience: int
    acknowledged: int
    rate: float
    by_department: list[AckSegment]
    by_location: list[AckSegment]


class ReminderSent(BaseModel):
    reminded: int


