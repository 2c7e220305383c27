"""messaging.v1: mentions in messages, and new messages for members who are not online (push, batched email).

Who gets what is described in services/notifications/digests/messages.py (presence and read markers
are all this service sees of messaging's sockets).
"""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.audience.models import Presence
from services.notifications.config import Settings
from services.notifications.digests import messages as message_emails
from services.notifications.inbox.models import Notification
from services.notifications.inbox.service import LISTED, Source, eligible, notify, remove_where
from shared.events import Envelope
from shared.kafka import EventConsumer


async def on_presence(session: AsyncSession, envelope: Envelope, presence) -> None:
    stmt = insert(Presence).values(person_id=presence.person_id, status=presence.status, updated_at=envelope.time)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[Presence.person_id], set_={"status": presence.status, "updated_at": envelope.time},
        where=Presence.updated_at <= stmt.excluded.updated_at))


def on_message(settings: Settings):
    window = timedelta(minutes=settings.message_email_minutes)

    async def handle(session: AsyncSession, envelope: Envelope, message) -> None:
        """Mentioned members get a mention (inbox, push); the others not online a push and a batched email."""
        members = set(message.recipients) - {message.sender_id}
        # only members: a mention cannot reach someone outside the conversation
        mentioned = [p for p in dict.fromkeys(message.mentions) if p in members]
        base = dict(actor_id=message.sender_id, excerpt=message.excerpt, conversation_id=message.conversation_id)
        await notify(session, envelope, Source(kind="mention", subject_type="message", subject_id=message.message_id,
                                               **base), recipients=mentioned)
        others = [p for p in message.recipients if p in members and p not in set(mentioned)]
        if not others:
            return
        online = set(await session.scalars(select(Presence.person_id).where(Presence.person_id.in_(others),
                                                                            Presence.status == "online")))
        absent = [p for p in others if p not in online]
        source = Source(kind="message", subject_type="conversation", subject_id=message.conversation_id, **base)
        await notify(session, envelope, source, recipients=absent)  # push only: `message` has no inbox row
        await message_emails.queue(session, people=await eligible(session, source, candidates=LISTED, ids=absent),
                                   conversation_id=message.conversation_id, message_id=message.message_id,
                                   sender_id=message.sender_id, excerpt=message.excerpt, window=window)
    return handle


async def on_read(session: AsyncSession, envelope: Envelope, read) -> None:
    await message_emails.read_up_to(session, person_id=read.person_id, conversation_id=read.conversation_id,
                                    message_id=read.last_read_message_id)


async def on_message_deleted(session: AsyncSession, envelope: Envelope, message) -> None:
    """A deleted message's mentions disappear, and no email quotes it."""
    await remove_where(session, Notification.subject_type == "message", Notification.subject_id == message.message_id)
    await message_emails.forget_message(session, conversation_id=message.conversation_id,
                                        message_id=message.message_id)


async def on_member_removed(session: AsyncSession, envelope: Envelope, member) -> None:
    """Out of a conversation: its notifications and pending email go (it is no longer theirs to read)."""
    await remove_where(session, Notification.recipient_id == member.person_id,
                       Notification.conversation_id == member.conversation_id)
    await message_emails.forget_member(session, conversation_id=member.conversation_id, person_id=member.person_id)


def messaging_consumer(settings: Settings) -> EventConsumer:
    return EventConsumer(name="notifications.messaging", topics=[settings.topic_messaging],
                         handlers={"hearth.presence.changed": on_presence, "hearth.message.sent": on_message(settings),
                                   "hearth.conversation.read": on_read, "hearth.message.deleted": on_message_deleted,
                                   "hearth.conversation.member_removed": on_member_removed},
                         max_attempts=settings.consumer_max_attempts)
