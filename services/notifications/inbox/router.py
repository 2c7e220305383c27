from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from services.notifications.db import SessionDep
from services.notifications.inbox import service
from services.notifications.inbox.schemas import NotificationPublic, ReadAll, UnreadCount
from services.notifications.preferences.defaults import Kind
from shared.auth import CurrentUserDep
from shared.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


@router.get("", response_model=Page[NotificationPublic])
async def list_notifications(session: SessionDep, user: CurrentUserDep, page: PageDep, unread: bool = False,
                             kind: Annotated[list[Kind] | None, Query(max_length=20)] = None):
    """The caller's notifications, most recently updated first; `?unread=true`, `?kind=mention&kind=reply`."""
    items, next_cursor = await service.get_all(session, recipient_id=user.id, page=page, unread_only=unread,
                                               kinds=kind)
    names = await service.actor_names(session, items)
    public = []
    for n in items:
        who = names.get(n.actor_id, "Someone")
        if n.actor_count > 1:
            others = n.actor_count - 1
            who += f" and {others} other{'s' if others > 1 else ''}"
        public.append(NotificationPublic.model_validate(n).model_copy(
            update={"title": f"{who} {service.VERBS.get(n.kind, n.kind)}"}))
    return Page(items=public, next_cursor=next_cursor)


@router.get("/unread-count", response_model=UnreadCount)
async def read_unread_count(session: SessionDep, user: CurrentUserDep):
    """How many of the caller's notifications are unread (the badge)."""
    return UnreadCount(unread=await service.unread_count(session, recipient_id=user.id))


@router.post("/read-all", response_model=ReadAll)
async def mark_all_read(session: SessionDep, user: CurrentUserDep):
    """Mark all the caller's notifications read."""
    return ReadAll(marked=await service.mark_all_read(session, recipient_id=user.id))


@router.post("/{notification_id}/read", response_model=NotificationPublic)
async def mark_read(notification_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Mark one notification read."""
    return await service.mark_read(session, notification_id=notification_id, recipient_id=user.id)


@router.delete("/{notification_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_notification(notification_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Delete one of the caller's notifications."""
    await service.delete_one(session, notification_id=notification_id, recipient_id=user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
