"""Events as posts would publish them, and a way to apply them the way the consumer loop does."""

from uuid import UUID

from uuid6 import uuid7

from services.notifications.inbox.consumers import social_consumer
from shared.db import utcnow
from shared.events import Envelope, EventData
from shared.directory import people_consumer
from tests.events import person_created


def wrap(payload: EventData, actor: UUID | None = None) -> Envelope:
    return Envelope.wrap(payload, source="posts", subject=uuid7(), actor=actor, client="web")


async def apply(settings, sessionmaker, envelope: Envelope) -> bool:
    consumer = social_consumer(settings)
    return await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])


async def send(settings, sessionmaker, payload: EventData, actor: UUID | None = None) -> Envelope:
    envelope = wrap(payload, actor)
    await apply(settings, sessionmaker, envelope)
    return envelope


async def add_person(settings, sessionmaker, **fields) -> UUID:
    event = person_created(**fields)
    people = people_consumer(settings)
    await people.apply(sessionmaker, event, event.payload(), people.handlers[event.type])
    return event.payload().person.id


async def inbox(client, keys, person: UUID, query: str = "") -> list[dict]:
    response = await client.get(f"/api/v1/notifications{query}", headers=keys.headers(person))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def now():
    return utcnow()


def mail_settings(settings, controller):
    """The settings with SMTP pointed at the test's aiosmtpd server (the `smtp` fixture)."""
    return settings.model_copy(update={"smtp_host": controller.hostname, "smtp_port": controller.port})
