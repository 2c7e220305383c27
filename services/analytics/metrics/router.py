from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from services.analytics.db import SessionDep
from services.analytics.metrics import service
from services.analytics.metrics.window import WindowDep
from shared.auth import CurrentUserDep, require_roles, require_scope
from shared.errors import Forbidden

STAFF = ("communications",)  # admins pass every role check
Dimension = Literal["department", "location", "manager", "leader", "tenure", "client"]
ByDep = Annotated[Dimension, Query(description="The segment dimension")]
Limit = Annotated[int, Query(ge=1, le=100)]


class NotYourAnalytics(Forbidden):
    code, title = "analytics-forbidden", "Not allowed to see these analytics"


# Network-wide numbers and people-level lists: communications and admins only.
router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"],
                   dependencies=[require_roles(*STAFF), require_scope("analytics:read")])
# One group's or one post's numbers: also their admins / authors.
scoped = APIRouter(prefix="/api/v1/analytics", tags=["analytics"], dependencies=[require_scope("analytics:read")])


@router.get("/overview")
async def read_overview(session: SessionDep, window: WindowDep):
    """Members, active members and rate, DAU/WAU/MAU, stickiness, engaged members, contributors, organic content,
    average social reach, response rate and median time to first response."""
    return await service.overview(session, window)


@router.get("/segments")
async def read_segments(session: SessionDep, window: WindowDep, by: ByDep = "department"):
    """The overview's people and content numbers per segment; segments under 5 members are suppressed."""
    return await service.segments(session, window, by)


@router.get("/barriers")
async def read_barriers(session: SessionDep, window: WindowDep, by: ByDep = "department"):
    """Segments whose active rate is below half the network's."""
    return await service.barriers(session, window, by)


@router.get("/champions")
async def read_champions(session: SessionDep, window: WindowDep, by: ByDep = "department",
                         limit: Annotated[int, Query(ge=1, le=20)] = 3):
    """Top contributors per segment by engagement received from distinct other people."""
    return await service.champions(session, window, by, limit)


@router.get("/top/people")
async def read_top_people(session: SessionDep, window: WindowDep, limit: Limit = 20):
    """Members with the most contributions in the window."""
    return await service.top_people(session, window, limit)


@router.get("/content-types")
async def read_content_types(session: SessionDep, window: WindowDep):
    """Per post kind: posts, average reach and engagement rate."""
    return await service.content_types(session, window)


@router.get("/leaders")
async def read_leaders(session: SessionDep, window: WindowDep):
    """Leaders active, reach and engagement of their posts, how often they reply to employees."""
    return await service.leaders(session, window)


@router.get("/search")
async def read_search(session: SessionDep, window: WindowDep, limit: Limit = 20):
    """Top queries, zero-result queries and the zero-result rate."""
    return await service.search(session, window, limit)


@router.get("/clients")
async def read_clients(session: SessionDep, window: WindowDep):
    """Share of active people per client (web, ios, android, api)."""
    return await service.clients(session, window)


@scoped.get("/top/groups")
async def read_top_groups(session: SessionDep, window: WindowDep, user: CurrentUserDep, limit: Limit = 20):
    """The most active groups; a group admin sees the groups they administer."""
    only = None
    if not user.has_role(*STAFF):
        only = await service.administered_groups(session, user.id)
        if not only:
            raise NotYourAnalytics("Group analytics are for communications, admins and the group's admins.")
    return await service.top_groups(session, window, limit, only)


@scoped.get("/groups/{group_id}")
async def read_group(group_id: UUID, session: SessionDep, window: WindowDep, user: CurrentUserDep):
    """Community health of a group: active members, posts, unanswered questions, response rate."""
    if not user.has_role(*STAFF) and group_id not in await service.administered_groups(session, user.id):
        raise NotYourAnalytics("Group analytics are for communications, admins and the group's admins.")
    return await service.group_report(session, group_id, window)


@scoped.get("/posts/{post_id}")
async def read_post(post_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Seen by, reach as a share of the audience, reactions, comments, time to first response."""
    author, group_id, _ = await service.post_owner(session, post_id)
    if not (user.has_role(*STAFF) or user.id == author
            or (group_id is not None and group_id in await service.administered_groups(session, user.id))):
        raise NotYourAnalytics("Post analytics are for its author, its group's admins, communications and admins.")
    return await service.post_report(session, post_id)


@scoped.get("/announcements/{post_id}")
async def read_announcement(post_id: UUID, session: SessionDep, user: CurrentUserDep, by: ByDep = "department"):
    """Acknowledgement rate of an announcement, overall and by segment (segments under 5 suppressed)."""
    author, _, _ = await service.post_owner(session, post_id)
    if not (user.has_role(*STAFF) or user.id == author):
        raise NotYourAnalytics("Announcement analytics are for its author, communications and admins.")
    return await service.announcement_report(session, post_id, by)
