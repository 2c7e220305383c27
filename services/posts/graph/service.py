"""Follows, follow requests and protected accounts (Mastodon's model).

A protected account's follows go through requests its owner approves. Turning protection on keeps
existing followers (they were approved by being there); turning it off approves every pending request.
"""

from datetime import timedelta
from uuid import UUID

from sqlalchemy import ARRAY, DateTime, Uuid, bindparam, delete, exists, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.graph.models import Follow, FollowNotice, FollowRequest
from services.posts.graph.schemas import FollowRequestPublic, FollowState
from services.posts.people import api as people
from services.posts.people.api import Person
from shared.db import utcnow
from shared.errors import Forbidden, InvalidInput, NotFound
from shared.events import (
    FollowCreated,
    FollowRemoved,
    FollowRequestClosed,
    FollowRequested,
)
from shared.outbox import add_event, add_events
from shared.pagination import PageParams, paginate

NOTICE_INTERVAL = timedelta(days=1)


class FollowRequestNotFound(NotFound):
    code, title = "follow-request-not-found", "Follow request not found"


class FollowersHidden(Forbidden):
    code, title = "followers-hidden", "Hidden by a protected account"



async def is_following(session: AsyncSession, *, follower_id: UUID, followee_id: UUID) -> bool:
    return bool(await session.scalar(select(exists().where(Follow.follower_id == follower_id,
                                                           Follow.followee_id == followee_id))))


async def follower_ids(session: AsyncSession, *, followee_id: UUID, among: list[UUID]) -> set[UUID]:
    if not among:
        return set()
    return set(await session.scalars(select(Follow.follower_id).where(Follow.followee_id == followee_id,
                                                                      Follow.follower_id.in_(among))))


async def add_follow(session: AsyncSession, *, follower_id: UUID, followee_id: UUID, actor: UUID | None,
                      via_request: bool) -> None:
    created = await session.scalar(insert(Follow).values(follower_id=follower_id, followee_id=followee_id)
                                   .on_conflict_do_nothing().returning(Follow.follower_id))
    if created is not None:
        quiet = not await _first_notice_today(session, follower_id=follower_id, followee_id=followee_id)
        await add_event(session, FollowCreated(follower_id=follower_id, followee_id=followee_id,
                                               via_request=via_request, quiet=quiet), subject=followee_id, actor=actor)


async def _first_notice_today(session: AsyncSession, *, follower_id: UUID, followee_id: UUID) -> bool:
    """Whether this follow may notify: at most once a day per follower and person (no follow/unfollow spam)."""
    now = utcnow()
    stmt = insert(FollowNotice).values(follower_id=follower_id, followee_id=followee_id, notified_at=now)
    noticed = await session.scalar(stmt.on_conflict_do_update(
        index_elements=[FollowNotice.follower_id, FollowNotice.followee_id], set_={"notified_at": now},
        where=FollowNotice.notified_at <= now - NOTICE_INTERVAL).returning(FollowNotice.follower_id))
    return noticed is not None


async def follow(session: AsyncSession, *, follower_id: UUID, followee_id: UUID) -> FollowState:
    """Follow someone, or ask to when their account is protected. Repeating it changes nothing."""
    if follower_id == followee_id:
        raise InvalidInput("You cannot follow yourself.")
    followee = await people.get_active_or_raise(session, person_id=followee_id)
    if await is_following(session, follower_id=follower_id, followee_id=followee_id):
        return FollowState(state="following")
    if not followee.protected:
        await add_follow(session, follower_id=follower_id, followee_id=followee_id, actor=follower_id,
                          via_request=False)
        return FollowState(state="following")
    request_id = await session.scalar(
        insert(FollowRequest).values(follower_id=follower_id, followee_id=followee_id)
        .on_conflict_do_nothing().returning(FollowRequest.id))
    if request_id is None:  # already pending
        request_id = await session.scalar(select(FollowRequest.id).where(FollowRequest.follower_id == follower_id,
                                                                        FollowRequest.followee_id == followee_id))
    else:
        await add_event(session, FollowRequested(request_id=request_id, follower_id=follower_id,
                                                 followee_id=followee_id), subject=followee_id, actor=follower_id)
    return FollowState(state="requested", request_id=request_id)


async def unfollow(session: AsyncSession, *, follower_id: UUID, followee_id: UUID) -> None:
    """Stop following, or cancel a pending request."""
    removed = await session.scalar(delete(Follow).where(Follow.follower_id == follower_id,
                                                        Follow.followee_id == followee_id)
                                   .returning(Follow.follower_id))
    if removed is not None:
        await add_event(session, FollowRemoved(follower_id=follower_id, followee_id=followee_id, reason="unfollowed"),
                        subject=followee_id, actor=follower_id)
    cancelled = await session.scalar(delete(FollowRequest).where(FollowRequest.follower_id == follower_id,
                                                                 FollowRequest.followee_id == followee_id)
                                     .returning(FollowRequest.id))
    if cancelled is not None:
        await add_event(session, FollowRequestClosed(request_id=cancelled, follower_id=follower_id,
                                                     followee_id=followee_id, outcome="cancelled"),
                        subject=followee_id, actor=follower_id)


async def remove_follower(session: AsyncSession, *, owner_id: UUID, follower_id: UUID) -> None:
    """The owner removes someone from their followers (they can ask again)."""
    removed = await session.scalar(delete(Follow).where(Follow.follower_id == follower_id,
                                                        Follow.followee_id == owner_id).returning(Follow.follower_id))
    if removed is None:
        raise NotFound("This person does not follow you.")
    await add_event(session, FollowRemoved(follower_id=follower_id, followee_id=owner_id, reason="removed_by_followee"),
                    subject=owner_id, actor=owner_id)


async def _own_request(session: AsyncSession, *, owner_id: UUID, request_id: UUID) -> FollowRequest:
    request = await session.get(FollowRequest, request_id, with_for_update=True)
    if request is None or request.followee_id != owner_id:  # someone else's request does not exist for you
        raise FollowRequestNotFound()
    return request


async def approve_request(session: AsyncSession, *, owner_id: UUID, request_id: UUID) -> None:
    request = await _own_request(session, owner_id=owner_id, request_id=request_id)
    await session.delete(request)
    await add_follow(session, follower_id=request.follower_id, followee_id=owner_id, actor=owner_id, via_request=True)


async def deny_request(session: AsyncSession, *, owner_id: UUID, request_id: UUID) -> None:
    request = await _own_request(session, owner_id=owner_id, request_id=request_id)
    await session.delete(request)
    await add_event(session, FollowRequestClosed(request_id=request.id, follower_id=request.follower_id,
                                                 followee_id=owner_id, outcome="denied"),
                    subject=owner_id, actor=owner_id)


@people.on_protection_lifted
async def approve_all_requests(session: AsyncSession, *, followee: Person, actor: UUID | None) -> None:
    """Protection turned off: every pending request becomes a follow (in the caller's transaction), in a
    fixed number of statements however many are pending, and their events in one outbox write."""
    asked = sorted(await session.scalars(delete(FollowRequest).where(FollowRequest.followee_id == followee.id)
                                         .returning(FollowRequest.follower_id)))
    if not asked:
        return
    now = literal(utcnow(), DateTime(timezone=True))
    created = sorted(await session.scalars(insert(Follow).from_select(
        ["follower_id", "followee_id", "created_at"], select(func.unnest(_ids(asked)), literal(followee.id), now))
        .on_conflict_do_nothing().returning(Follow.follower_id)))
    if not created:
        return
    # The once-a-day notice rule of `add_follow`, for all of them at once.
    notice = insert(FollowNotice).from_select(["follower_id", "followee_id", "notified_at"],
                                              select(func.unnest(_ids(created)), literal(followee.id), now))
    noticed = set(await session.scalars(notice.on_conflict_do_update(
        index_elements=[FollowNotice.follower_id, FollowNotice.followee_id], set_={"notified_at": now},
        where=FollowNotice.notified_at <= now - NOTICE_INTERVAL).returning(FollowNotice.follower_id)))
    await add_events(session, [(FollowCreated(follower_id=f, followee_id=followee.id, via_request=True,
                                              quiet=f not in noticed), followee.id) for f in created], actor=actor)


def _ids(ids: list[UUID]):
    """A list of ids as one array parameter (an IN list has one parameter per id, and PostgreSQL a limit)."""
    return bindparam(None, ids, type_=ARRAY(Uuid))


async def list_requests(session: AsyncSession, *, owner_id: UUID, page: PageParams):
    stmt = select(FollowRequest).where(FollowRequest.followee_id == owner_id)
    requests, next_cursor = await paginate(session, stmt, columns=[FollowRequest.created_at, FollowRequest.id],
                                           page=page)
    followers = await people.by_ids(session, person_ids=[r.follower_id for r in requests])
    return [FollowRequestPublic(id=r.id, follower=followers[r.follower_id], created_at=r.created_at)
            for r in requests], next_cursor


async def _may_see_connections(session: AsyncSession, *, viewer_id: UUID, person: Person) -> None:
    if person.protected and viewer_id != person.id and not await is_following(
            session, follower_id=viewer_id, followee_id=person.id):
        raise FollowersHidden("Only approved followers see who follows this protected account and whom it follows.")


async def list_followers(session: AsyncSession, *, viewer_id: UUID, person_id: UUID, page: PageParams):
    person = await people.get_active_or_raise(session, person_id=person_id)
    await _may_see_connections(session, viewer_id=viewer_id, person=person)
    stmt = select(Person).join(Follow, Follow.follower_id == Person.id).where(Follow.followee_id == person_id,
                                                                              Person.active.is_(True))
    return await paginate(session, stmt, columns=[Person.display_name, Person.id], page=page, descending=False)


async def list_following(session: AsyncSession, *, viewer_id: UUID, person_id: UUID, page: PageParams):
    person = await people.get_active_or_raise(session, person_id=person_id)
    await _may_see_connections(session, viewer_id=viewer_id, person=person)
    stmt = select(Person).join(Follow, Follow.followee_id == Person.id).where(Follow.follower_id == person_id,
                                                                              Person.active.is_(True))
    return await paginate(session, stmt, columns=[Person.display_name, Person.id], page=page, descending=False)
