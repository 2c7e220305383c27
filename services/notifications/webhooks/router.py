from uuid import UUID

from fastapi import APIRouter, Request, Response, status

from services.notifications.db import SessionDep
from services.notifications.webhooks import service
from services.notifications.webhooks.schemas import (DeliveryPublic, WebhookCreate, WebhookCreated, WebhookPublic,
                                                      WebhookUpdate)
from shared.auth import CurrentUserDep
from shared.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/notifications/webhooks", tags=["webhooks"])


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
async def create_webhook(data: WebhookCreate, request: Request, session: SessionDep, user: CurrentUserDep):
    """Subscribe a URL to event types (admins; an API token needs each type's read scope). The secret is shown once."""
    webhook = await service.create(session, user=user, data=data, settings=request.app.state.settings)
    return WebhookCreated.model_validate(webhook, from_attributes=True)


@router.get("", response_model=list[WebhookPublic])
async def list_webhooks(session: SessionDep, user: CurrentUserDep):
    """The caller's webhooks (never their secrets)."""
    return await service.get_all(session, owner_id=user.id)


@router.get("/{webhook_id}", response_model=WebhookPublic)
async def read_webhook(webhook_id: UUID, session: SessionDep, user: CurrentUserDep):
    """One of the caller's webhooks."""
    return await service.get_own_or_raise(session, webhook_id=webhook_id, owner_id=user.id)


@router.patch("/{webhook_id}", response_model=WebhookPublic)
async def update_webhook(webhook_id: UUID, data: WebhookUpdate, session: SessionDep, user: CurrentUserDep):
    """Pause, or re-enable after it was switched off."""
    webhook = await service.get_own_or_raise(session, webhook_id=webhook_id, owner_id=user.id)
    return await service.set_active(session, webhook=webhook, active=data.active)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Delete a webhook and its delivery log."""
    webhook = await service.get_own_or_raise(session, webhook_id=webhook_id, owner_id=user.id)
    await service.delete(session, webhook=webhook)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryPublic])
async def list_deliveries(webhook_id: UUID, session: SessionDep, user: CurrentUserDep, page: PageDep):
    """The delivery log, newest first: status, attempts, last response."""
    await service.get_own_or_raise(session, webhook_id=webhook_id, owner_id=user.id)
    items, next_cursor = await service.get_deliveries(session, webhook_id=webhook_id, page=page)
    return Page(items=items, next_cursor=next_cursor)
