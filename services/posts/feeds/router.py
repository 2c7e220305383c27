from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, status

from services.posts.content.schemas import PostPublic
from services.posts.db import SessionDep
from services.posts.feeds import service
from shared.auth import CurrentUser, require_scope
from shared.db import read_only
from shared.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/feeds", tags=["feeds"])

Reader = Annotated[CurrentUser, require_scope("posts:read")]
Writer = Annotated[CurrentUser, require_scope("posts:write")]
Tag = Annotated[str, Path(min_length=1, max_length=101)]
NO_CONTENT = status.HTTP_204_NO_CONTENT


def _page(feed: service.FeedPage) -> Response:
    """The page as JSON, serialized once by Pydantic: the items are already `PostPublic`, so FastAPI's own pass
    (validate the page against `response_model` again, then serialize) would only repeat the work. The routes
    keep `response_model` for the OpenAPI schema."""
    page = Page[PostPublic].model_construct(items=feed.items, next_cursor=feed.next_cursor)
    return Response(page.model_dump_json(), media_type="application/json")


@router.get("/home", response_model=Page[PostPublic])
@read_only
async def home(session: SessionDep, user: Reader, page: PageDep,
               order: Annotated[Literal["recent", "top"], Query()] = "recent"):
    """Followed people, joined groups, followed tags and company announcements (pinned first)."""
    return _page(await service.home(session, user=user, page=page, order=order))


@router.get("/company", response_model=Page[PostPublic])
@read_only
async def company(session: SessionDep, user: Reader, page: PageDep):
    """Company-wide posts I may read, newest first."""
    return _page(await service.company(session, user=user, page=page))


@router.get("/groups/{group_id}", response_model=Page[PostPublic])
@read_only
async def group(group_id: UUID, session: SessionDep, user: Reader, page: PageDep):
    """A group's posts, newest first."""
    return _page(await service.group(session, user=user, group_id=group_id, page=page))


@router.put("/groups/{group_id}/mute", status_code=NO_CONTENT)
async def mute_group(group_id: UUID, session: SessionDep, user: Writer):
    """Keep this group's posts out of my home feed."""
    await service.mute_group(session, user=user, group_id=group_id, on=True)


@router.delete("/groups/{group_id}/mute", status_code=NO_CONTENT)
async def unmute_group(group_id: UUID, session: SessionDep, user: Writer):
    """Let this group's posts back into my home feed."""
    await service.mute_group(session, user=user, group_id=group_id, on=False)


@router.get("/people/{person_id}", response_model=Page[PostPublic])
@read_only
async def person(person_id: UUID, session: SessionDep, user: Reader, page: PageDep):
    """Someone's posts that I may read, newest first."""
    return _page(await service.person(session, user=user, person_id=person_id, page=page))


@router.get("/tags", response_model=list[str])
@read_only
async def followed_tags(session: SessionDep, user: Reader):
    """The hashtags I follow."""
    return await service.followed_tags(session, user=user)


@router.get("/tags/{tag}", response_model=Page[PostPublic])
@read_only
async def tag(tag: Tag, session: SessionDep, user: Reader, page: PageDep):
    """Posts with this hashtag that I may read, newest first."""
    return _page(await service.tag(session, user=user, tag=tag, page=page))


@router.put("/tags/{tag}/follow", status_code=NO_CONTENT)
async def follow_tag(tag: Tag, session: SessionDep, user: Writer):
    """Follow a hashtag: its posts reach my home feed."""
    await service.follow_tag(session, user=user, tag=tag, on=True)


@router.delete("/tags/{tag}/follow", status_code=NO_CONTENT)
async def unfollow_tag(tag: Tag, session: SessionDep, user: Writer):
    """Stop following a hashtag."""
    await service.follow_tag(session, user=user, tag=tag, on=False)


@router.get("/bookmarks", response_model=Page[PostPublic])
@read_only
async def bookmarks(session: SessionDep, user: Reader, page: PageDep):
    """My bookmarks, most recent first."""
    return _page(await service.bookmarks(session, user=user, page=page))
