from uuid import UUID

from fastapi import APIRouter, Response, status

from services.notifications.db import SessionDep
from services.notifications.inbox import service
from services.notifications.inbox.schemas import NotificationPublic, UnreadCount
from shared.auth import CurrentUserDep
from shared.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


@router.get("", response_model=Page[NotificationPublic])
async def list_notifications(session: SessionDep, user: CurrentUserDep, page: PageDep, unread: bool = False):
    """The caller's notifications, newest first."""
    items, next_cursor = await service.get_all(session, recipient_id=user.id, page=page, unread_only=unread)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/unread-count", response_model=UnreadCount)
async def read_unread_count(session: SessionDep, user: CurrentUserDep):
    """How many of the caller's notifications are unread (the badge)."""
    return UnreadCount(unread=await service.unread_count(session, recipient_id=user.id))


@router.post("/{notification_id}/read", response_model=NotificationPublic)
async def mark_read(notification_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Mark one notification read."""
    return await service.mark_read(session, notification_id=notification_id, recipient_id=user.id)


@router.post("/read-all", status_code=status.HTTP_204_NO_CONTENT)
async def mark_all_read(session: SessionDep, user: CurrentUserDep):
    """Mark all the caller's notifications read."""
    await service.mark_all_read(session, recipient_id=user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
