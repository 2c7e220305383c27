"""The people read model that services other than posts keep from people.v1.

It is the same table in messaging, notifications and analytics, so it lives here once: a service
adds `directory_metadata` to its migrations and `people_consumer(...)` to its consumers.
"""

from datetime import timedelta

from sqlalchemy import Boolean, Column, Date, DateTime, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import API_TOKEN_MAX_DAYS
from shared.config import HearthSettings
from shared.db import NAMING_CONVENTION
from shared.events import Envelope, EventData, PersonSnapshot
from shared.kafka import EventConsumer
from shared.outbox import revoked_tokens_table

directory_metadata = MetaData(naming_convention=NAMING_CONVENTION)

directory_people = Table(
    "directory_people", directory_metadata,
    Column("id", PG_UUID(as_uuid=True), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("title", String(200)),
    Column("department", String(200), index=True),
    Column("location", String(200), index=True),
    Column("manager_id", PG_UUID(as_uuid=True)),
    Column("hire_date", Date),
    Column("leader", Boolean, nullable=False, default=False),
    Column("official", Boolean, nullable=False, default=False),
    Column("protected", Boolean, nullable=False, default=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("roles", ARRAY(String(32)), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


async def upsert_person(session: AsyncSession, person: PersonSnapshot) -> None:
    """Apply a snapshot unless a newer one is already stored (events of one person arrive in order,
    but a replayed old event must not roll the directory back)."""
    values = person.model_dump(include=set(directory_people.c.keys()))
    stmt = insert(directory_people).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=[directory_people.c.id], set_=values,
                                      where=directory_people.c.updated_at <= stmt.excluded.updated_at)
    await session.execute(stmt)


async def _on_person(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
    await upsert_person(session, payload.person)


async def _on_api_token_revoked(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
    # The event does not carry the token's expiry; no API token outlives API_TOKEN_MAX_DAYS from its
    # revocation, so that bound is a safe time to purge the row.
    values = {"jti": payload.token_id, "revoked_at": envelope.time,
              "expires_at": envelope.time + timedelta(days=API_TOKEN_MAX_DAYS)}
    await session.execute(insert(revoked_tokens_table).values(**values).on_conflict_do_nothing())


PERSON_SNAPSHOT_EVENTS = ("hearth.person.created", "hearth.person.updated", "hearth.person.deactivated",
                          "hearth.person.reactivated")


def people_consumer(settings: HearthSettings) -> EventConsumer:
    handlers = {t: _on_person for t in PERSON_SNAPSHOT_EVENTS} | {"hearth.api_token.revoked": _on_api_token_revoked}
    return EventConsumer(name=f"{settings.service_name}.directory", topics=[settings.topic_people],
                         handlers=handlers, max_attempts=settings.consumer_max_attempts)


async def get_person(session: AsyncSession, person_id) -> dict | None:
    row = (await session.execute(select(directory_people).where(directory_people.c.id == person_id))).mappings().first()
    return dict(row) if row else None
