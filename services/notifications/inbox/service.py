from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.inbox.models import Notification
from shared.db import utcnow
from shared.errors import NotFound
from shared.directory import directory_people
from shared.events import Envelope, FollowCreated, FollowRequested, GroupInvited, PostCreated
from shared.pagination import PageParams, paginate


class NotificationNotFound(NotFound):
    code, title = "notification-not-found", "Notification not found"


async def _notify(session: AsyncSession, envelope: Envelope, *, recipients: list[UUID], kind: str,
                  actor_id: UUID | None, subject_type: str, subject_id: UUID, excerpt: str = "") -> None:
    """Insert one notification per recipient, skipping the actor and people the directory knows are gone."""
    wanted = [r for r in dict.fromkeys(recipients) if r != actor_id]
    if not wanted:
        return
    gone = set(await session.scalars(select(directory_people.c.id).where(directory_people.c.id.in_(wanted),
                                                                       directory_people.c.active.is_(False))))
    rows = [dict(recipient_id=r, kind=kind, actor_id=actor_id, subject_type=subject_type, subject_id=subject_id,
                 excerpt=excerpt[:300], source_event_id=envelope.id) for r in wanted if r not in gone]
    if rows:
        # The unique (recipient, kind, source event) makes a replay a no-op even without the dedupe table.
        await session.execute(insert(Notification).values(rows).on_conflict_do_nothing())


async def record_mentions(session: AsyncSession, envelope: Envelope, post: PostCreated) -> None:
    """post.created: a `mention` notification per mentioned reader (posts already kept out non-readers)."""
    await _notify(session, envelope, recipients=post.mentions, kind="mention", actor_id=post.author_id,
                  subject_type="post", subject_id=post.post_id, excerpt=post.excerpt)


async def record_follow(session: AsyncSession, envelope: Envelope, follow: FollowCreated) -> None:
    """follow.created: tell the person they have a new follower (or that their approval took effect)."""
    await _notify(session, envelope, recipients=[follow.followee_id], kind="follow", actor_id=follow.follower_id,
                  subject_type="person", subject_id=follow.follower_id)


async def record_follow_request(session: AsyncSession, envelope: Envelope, request: FollowRequested) -> None:
    """follow.requested: the protected account's owner has a request to decide."""
    await _notify(session, envelope, recipients=[request.followee_id], kind="follow_request",
                  actor_id=request.follower_id, subject_type="person", subject_id=request.follower_id)


async def record_group_invite(session: AsyncSession, envelope: Envelope, invite: GroupInvited) -> None:
    """group.invited: the invitee can accept or decline."""
    await _notify(session, envelope, recipients=[invite.person_id], kind="group_invite", actor_id=invite.inviter_id,
                  subject_type="group", subject_id=invite.group_id)


async def get_all(session: AsyncSession, *, recipient_id: UUID, page: PageParams, unread_only: bool = False):
    stmt = select(Notification).where(Notification.recipient_id == recipient_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return await paginate(session, stmt, columns=[Notification.created_at, Notification.id], page=page)


async def unread_count(session: AsyncSession, *, recipient_id: UUID) -> int:
    return await session.scalar(select(func.count()).select_from(Notification)
                                .where(Notification.recipient_id == recipient_id, Notification.read_at.is_(None)))


async def mark_read(session: AsyncSession, *, notification_id: UUID, recipient_id: UUID) -> Notification:
    """Mark one of the recipient's notifications read; someone else's is reported as not found."""
    notification = await session.get(Notification, notification_id)
    if notification is None or notification.recipient_id != recipient_id:
        raise NotificationNotFound()
    if notification.read_at is None:
        notification.read_at = utcnow()
        await session.commit()
    return notification


async def mark_all_read(session: AsyncSession, *, recipient_id: UUID) -> None:
    await session.execute(update(Notification).where(Notification.recipient_id == recipient_id,
                                                     Notification.read_at.is_(None)).values(read_at=utcnow()))
    await session.commit()
