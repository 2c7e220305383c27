from typing import Annotated

from fastapi import APIRouter, Query, status

from services.posts.db import SessionDep
from services.posts.search import experts as expert_finder
from services.posts.search import service
from services.posts.search.schemas import (
    QUERY_MAX,
    SUGGEST_MAX,
    Experts,
    PeopleFilters,
    PostFilters,
    PostOrder,
    ResultOpened,
    SearchResults,
    SearchText,
    SearchType,
    Suggestions,
)
from shared.auth import CurrentUser, require_scope
from shared.db import read_only
from shared.pagination import PageDep

router = APIRouter(prefix="/api/v1/search", tags=["search"])

@router.get("", response_model=SearchResults)
async def search(session: SessionDep, page: PageDep, q: Annotated[SearchText, Query(max_length=QUERY_MAX)],
                 post_filters: Annotated[PostFilters, Query()], people_filters: Annotated[PeopleFilters, Query()],
                 type: SearchType = "posts", order: PostOrder = "relevance",
                 user: CurrentUser = require_scope("posts:read")):
    """Posts, people or groups matching `q` that the caller may see, best first (posts: or newest first)."""
    items, next_cursor, search_id = await service.search(
        session, user=user, q=q, search_type=type, page=page, post_filters=post_filters,
        people_filters=people_filters, order=order)
    return SearchResults(items=items, next_cursor=next_cursor, search_id=search_id)


@router.get("/suggest", response_model=Suggestions)
@read_only
async def suggest(session: SessionDep, q: Annotated[SearchText, Query(max_length=QUERY_MAX)],
                  limit: Annotated[int, Query(ge=1, le=SUGGEST_MAX)] = 5,
                  user: CurrentUser = require_scope("posts:read")):
    """Typeahead for mentions: people, groups and hashtags matching what was typed.

    Keystrokes are not searches: nothing is recorded (no `search.performed`, no `search_id`), so prefixes
    never reach analytics' top and zero-result queries. The suggestion a person picks is what gets
    reported: `POST /api/v1/search/opened` with `{"result_type": "person" | "group" | "tag",
    "result_id": <the person's or group's id, or the tag>, "query": <what was typed>, "position": <its
    0-based place in its list>}` and no `search_id`."""
    found_people, found_groups, tags = await service.suggest(session, user=user, q=q, limit=limit)
    return Suggestions(people=found_people, groups=found_groups, tags=tags)


@router.get("/experts", response_model=Experts)
async def experts(session: SessionDep, page: PageDep, topic: Annotated[SearchText, Query(max_length=QUERY_MAX)],
                  filters: Annotated[PeopleFilters, Query()], user: CurrentUser = require_scope("posts:read")):
    """People who know about `topic`: declared skills, accepted answers, posts and the engagement they got."""
    items, next_cursor, search_id = await expert_finder.experts(session, user=user, topic=topic, filters=filters,
                                                                page=page)
    return Experts(items=items, next_cursor=next_cursor, search_id=search_id)


@router.post("/opened", status_code=status.HTTP_204_NO_CONTENT)
async def result_opened(data: ResultOpened, session: SessionDep, user: CurrentUser = require_scope("posts:write")):
    """Report that a search result was opened (analytics: which searches succeed): a result of
    `GET /api/v1/search` or `/experts` with their `search_id`, or a picked typeahead suggestion
    (`GET /api/v1/search/suggest`: `result_type` `person`, `group` or `tag`, `result_id` its id or the tag,
    `query` what was typed, no `search_id`)."""
    await service.record_opened(session, user=user, **data.model_dump())

