from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.posts.content.models import HASHTAG_MAX
from services.posts.groups.schemas import Visibility
from services.posts.people.api import Person, PersonSummary
from shared.types import SafeText

QUERY_MAX = 200  # also the longest query an event carries
SUGGEST_MAX = 10


SearchText = SafeText(QUERY_MAX, blank=False)
SearchType = Literal["posts", "people", "groups"]
PostOrder = Literal["relevance", "date"]


class PostFilters(BaseModel):
    """Filters of a post search; they combine (AND)."""

    author_id: UUID | None = None
    group_id: UUID | None = None
    tag: SafeText(HASHTAG_MAX, blank=False) | None = None
    kind: Literal["update", "question", "praise", "announcement", "poll", "article"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    unanswered: bool = False  # questions without an accepted answer
    has_attachment: bool | None = None

    def used(self) -> list[str]:
        return sorted(k for k, v in self.model_dump(exclude_defaults=True).items() if v is not None)


class PeopleFilters(BaseModel):
    department: SafeText(Person.department) | None = None
    location: SafeText(Person.location) | None = None

    def used(self) -> list[str]:
        return sorted(k for k, v in self.model_dump().items() if v)


class PostHit(BaseModel):
    type: Literal["post"] = "post"
    id: UUID
    author: PersonSummary
    kind: str
    title: str | None = None
    # Escaped text with the matched words wrapped in <mark>…</mark>; safe to insert as HTML.
    snippet: str
    group_id: UUID | None
    hashtags: list[str]
    comment_count: int = 0
    reaction_count: int = 0
    created_at: datetime
    score: float | None = None  # relevance order only


class PersonHit(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    type: Literal["person"] = "person"
    id: UUID
    handle: str
    display_name: str
    title: str | None
    department: str | None
    location: str | None
    skills: list[str]
    avatar_url: str | None
    protected: bool


class GroupHit(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    type: Literal["group"] = "group"
    id: UUID
    name: str
    description: str
    visibility: Visibility
    official: bool
    archived: bool


SearchHit = Annotated[PostHit | PersonHit | GroupHit, Field(discriminator="type")]


class SearchResults(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None = None
    search_id: UUID  # send it back with result clicks (POST /api/v1/search/opened)


class TagHit(BaseModel):
    tag: str
    posts: int  # among the recent posts the caller can read


class Suggestions(BaseModel):
    people: list[PersonHit]
    groups: list[GroupHit]
    tags: list[TagHit]  # nothing is recorded for a keystroke: a picked suggestion is reported to /opened


class ResultOpened(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search_id: UUID | None = None  # none for a picked suggestion (suggest records nothing)
    query: SearchText | None = None
    result_type: Literal["post", "person", "group", "tag"]
    result_id: SafeText(100, blank=False)
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None


class Evidence(BaseModel):
    skill: bool  # declared the topic as a skill
    accepted_answers: int
    posts: int  # posts and articles on the topic
    engagement: int  # reactions and comments others left on those posts


class Expert(BaseModel):
    person: PersonHit
    score: float
    evidence: Evidence
    why: str  # "3 accepted answers on kubernetes, skill: kubernetes"


class Experts(BaseModel):
    items: list[Expert]
    next_cursor: str | None = None
    search_id: UUID
