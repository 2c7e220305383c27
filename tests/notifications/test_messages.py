"""A new message is pushed (never an inbox row) to members messaging does not see online."""

from datetime import timedelta

from sqlalchemy import func, select
from uuid6 import uuid7

from services.notifications.inbox.messaging import messaging_consumer
from services.notifications.inbox.models import Notification
from services.notifications.push.models import PushJob
from shared.db import utcnow
from shared.events import Envelope, MessageSent, PresenceChanged


async def consume(settings, sessionmaker, payload, at=None):
    envelope = Envelope.wrap(payload, source="messaging", subject=uuid7())
    if at is not None:
        envelope = envelope.model_copy(update={"time": at})
    consumer = messaging_consumer(settings)
    await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])


async def pushed_to(sessionmaker) -> set:
    async with sessionmaker() as session:
        return set(await session.scalars(select(PushJob.person_id)))


async def test_message_pushes_to_members_not_online_and_never_to_the_sender(settings, sessionmaker, client, keys):
    sender, online, away, unknown, muted = (uuid7() for _ in range(5))
    conversation = uuid7()
    for person in (sender, online, away, unknown, muted):
        await client.post("/api/v1/notifications/devices", headers=keys.headers(person),
                          json={"platform": "android", "token": f"t-{person}"})
    await client.put(f"/api/v1/notifications/mutes/conversation/{conversation}", headers=keys.headers(muted))
    now = utcnow()
    await consume(settings, sessionmaker, PresenceChanged(person_id=online, status="online"), at=now)
    await consume(settings, sessionmaker, PresenceChanged(person_id=away, status="online"), at=now)
    await consume(settings, sessionmaker, PresenceChanged(person_id=away, status="away"), at=now + timedelta(seconds=1))
    # an old event replayed late must not bring "online" back
    await consume(settings, sessionmaker, PresenceChanged(person_id=away, status="online"), at=now - timedelta(1))
    await consume(settings, sessionmaker, MessageSent(
        message_id=uuid7(), conversation_id=conversation, sender_id=sender, excerpt="Lunch at 12?",
        created_at=now, recipients=[sender, online, away, unknown, muted]))
    assert await pushed_to(sessionmaker) == {away, unknown}
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 0  # push only
        job = await session.scalar(select(PushJob).where(PushJob.person_id == away))
    assert job.body == "Lunch at 12?" and job.data["conversation_id"] == str(conversation)
