"""Event payloads of the activity domain (see shared/events/payloads.py for the conventions)."""

from datetime import date
from typing import Literal
from uuid import UUID

from shared.events.base import EventData


class PostViewed(EventData):
    """A person saw a post; sent once per person, post and UTC day (the first impression of the day)."""

    TOPIC = "activity"
    type: Literal["hearth.post.viewed"] = "hearth.post.viewed"
    post_id: UUID
    person_id: UUID
    author_id: UUID
    day: date


class SearchPerformed(EventData):
    """A person searched; `result_count` 0 on a first page is a zero-result query for analytics."""

    TOPIC = "activity"
    type: Literal["hearth.search.performed"] = "hearth.search.performed"
    search_id: UUID  # clicks on its results carry it back
    person_id: UUID
    query: str
    search_type: Literal["posts", "people", "groups", "suggest", "experts"]
    result_count: int  # results returned on this page
    first_page: bool = True
    filters: list[str] = []  # names of the filters used, not their values


class SearchResultOpened(EventData):
    """A person opened a search result (reported by the client)."""

    TOPIC = "activity"
    type: Literal["hearth.search.result_opened"] = "hearth.search.result_opened"
    search_id: UUID | None = None
    person_id: UUID
    query: str | None = None
    result_type: Literal["post", "person", "group", "tag"]
    result_id: str
    position: int | None = None  # 0-based rank on the page it was shown on
