"""messaging.v1: a new message is pushed to the members who are not online (no inbox row: push only)."""

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.audience.models import Presence
from services.notifications.config import Settings
from services.notifications.inbox.service import Source, notify
from shared.events import Envelope
from shared.kafka import EventConsumer


async def on_presence(session: AsyncSession, envelope: Envelope, presence) -> None:
    stmt = insert(Presence).values(person_id=presence.person_id, status=presence.status, updated_at=envelope.time)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[Presence.person_id], set_={"status": presence.status, "updated_at": envelope.time},
        where=Presence.updated_at <= stmt.excluded.updated_at))


async def on_message(session: AsyncSession, envelope: Envelope, message) -> None:
    """Members other than the sender, unless messaging says they are online (their chat socket shows it)."""
    others = [p for p in message.recipients if p != message.sender_id]
    if not others:
        return
    online = set(await session.scalars(select(Presence.person_id).where(Presence.person_id.in_(others),
                                                                        Presence.status == "online")))
    source = Source(kind="message", actor_id=message.sender_id, subject_type="conversation",
                    subject_id=message.conversation_id, excerpt=message.excerpt,
                    conversation_id=message.conversation_id)
    await notify(session, envelope, source, recipients=[p for p in others if p not in online])


def messaging_consumer(settings: Settings) -> EventConsumer:
    return EventConsumer(name="notifications.messaging", topics=[settings.topic_messaging],
                         handlers={"hearth.presence.changed": on_presence, "hearth.message.sent": on_message},
                         max_attempts=settings.consumer_max_attempts)
