from uuid import UUID

from fastapi import APIRouter, Response, status

from services.posts.db import SessionDep
from services.posts.graph import service
from services.posts.graph.schemas import FollowRequestPublic, FollowState
from services.posts.people.api import PersonSummary
from shared.auth import CurrentUserDep
from shared.idempotency import IdempotentRoute
from shared.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/people", tags=["follows"], route_class=IdempotentRoute)


@router.post("/{person_id}/follow", response_model=FollowState, status_code=status.HTTP_201_CREATED,
             responses={202: {"model": FollowState, "description": "Requested: the account is protected"}})
async def follow(person_id: UUID, session: SessionDep, user: CurrentUserDep, response: Response):
    """Follow someone (201), or request to follow a protected account (202)."""
    state = await service.follow(session, follower_id=user.id, followee_id=person_id)
    if state.state == "requested":
        response.status_code = status.HTTP_202_ACCEPTED
    return state


@router.delete("/{person_id}/follow", status_code=status.HTTP_204_NO_CONTENT)
async def unfollow(person_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Unfollow, or cancel a pending follow request."""
    await service.unfollow(session, follower_id=user.id, followee_id=person_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/follow-requests", response_model=Page[FollowRequestPublic])
async def list_follow_requests(session: SessionDep, user: CurrentUserDep, page: PageDep):
    """Pending requests to follow you, newest first."""
    items, next_cursor = await service.list_requests(session, owner_id=user.id, page=page)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/me/follow-requests/{request_id}/approve", status_code=status.HTTP_204_NO_CONTENT)
async def approve_follow_request(request_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Let the requester follow you."""
    await service.approve_request(session, owner_id=user.id, request_id=request_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/me/follow-requests/{request_id}/deny", status_code=status.HTTP_204_NO_CONTENT)
async def deny_follow_request(request_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Turn a follow request down (the requester is not told)."""
    await service.deny_request(session, owner_id=user.id, request_id=request_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/me/followers/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_follower(person_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Remove someone from your followers."""
    await service.remove_follower(session, owner_id=user.id, follower_id=person_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{person_id}/followers", response_model=Page[PersonSummary])
async def list_followers(person_id: UUID, session: SessionDep, user: CurrentUserDep, page: PageDep):
    """Who follows this person (hidden from non-followers of a protected account)."""
    items, next_cursor = await service.list_followers(session, viewer_id=user.id, person_id=person_id, page=page)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{person_id}/following", response_model=Page[PersonSummary])
async def list_following(person_id: UUID, session: SessionDep, user: CurrentUserDep, page: PageDep):
    """Whom this person follows (hidden from non-followers of a protected account)."""
    items, next_cursor = await service.list_following(session, viewer_id=user.id, person_id=person_id, page=page)
    return Page(items=items, next_cursor=next_cursor)
