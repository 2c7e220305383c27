"""Frames and events of a state change, written together in the caller's transaction."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.realtime.models import frames
from shared.events.messaging import MessagingEvent
from shared.outbox import add_event


async def publish(session: AsyncSession, event: MessagingEvent, *, kind: str, data: dict, subject: UUID,
                  actor: UUID | None) -> None:
    """A frame per recipient (the socket resumes from these) and the messaging.v1 event that wakes sockets."""
    await frames.append(session, recipients=event.recipients, kind=kind, data=data)
    await add_event(session, event, subject=subject, actor=actor)
