"""What messaging knows of people beyond the shared directory: their @handles, to resolve mentions."""

from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.config import Settings
from services.messaging.people.models import PersonHandle
from shared.directory import PERSON_SNAPSHOT_EVENTS, people_consumer, upsert_person
from shared.events import Envelope, EventData
from shared.markdown import parse_mentions
from shared.kafka import EventConsumer

async def resolve_mentions(session: AsyncSession, *, body: str, member_ids: list[UUID]) -> list[UUID]:
    """The members named by @handle in `body`; unknown handles and people outside `member_ids` are not mentions."""
    handles = parse_mentions(body)
    if not handles or not member_ids:
        return []
    found = await session.scalars(select(PersonHandle.person_id).where(
        PersonHandle.handle.in_(handles), PersonHandle.person_id.in_(member_ids)).order_by(PersonHandle.person_id))
    return list(found)


async def _on_person(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
    person = payload.person
    await upsert_person(session, person)
    if person.handle is None:  # an event from before snapshots carried the handle
        return
    # Like the directory: a replayed older snapshot never rolls a handle back; a handle taken over by
    # someone (newer snapshot) is no longer the previous holder's.
    stmt = insert(PersonHandle).values(person_id=person.id, handle=person.handle, updated_at=person.updated_at)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[PersonHandle.person_id], set_={"handle": stmt.excluded.handle, "updated_at": stmt.excluded.updated_at},
        where=PersonHandle.updated_at <= stmt.excluded.updated_at))
    await session.execute(delete(PersonHandle).where(PersonHandle.handle == person.handle,
                                                     PersonHandle.person_id != person.id,
                                                     PersonHandle.updated_at < person.updated_at))


def people_and_handles_consumer(settings: Settings) -> EventConsumer:
    """The shared directory consumer, whose person events also keep the handles."""
    consumer = people_consumer(settings)
    consumer.handlers |= {t: _on_person for t in PERSON_SNAPSHOT_EVENTS}
    consumer.fetch_max_wait_ms = settings.messaging_directory_fetch_max_wait_ms
    return consumer
