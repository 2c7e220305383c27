from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.inbox.models import Notification
from shared.db import utcnow
from shared.errors import NotFound
from shared.events import Envelope, PostCreated
from shared.pagination import PageParams, paginate


class NotificationNotFound(NotFound):
    code, title = "notification-not-found", "Notification not found"


async def record_mentions(session: AsyncSession, envelope: Envelope, post: PostCreated) -> None:
    """Consumer of post.created: one `mention` notification per mentioned reader (posts filtered them)."""
    rows = [dict(recipient_id=person_id, kind="mention", actor_id=post.author_id, subject_type="post",
                 subject_id=post.post_id, excerpt=post.excerpt[:300], source_event_id=envelope.id)
            for person_id in post.mentions if person_id != post.author_id]
    if rows:
        await session.execute(insert(Notification).values(rows).on_conflict_do_nothing())


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
