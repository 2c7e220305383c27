"""The people read model that services other than posts keep from people.v1.

It is the same table in messaging, notifications and analytics, so it lives here once: a service
adds `directory_metadata` to its migrations and `people_consumer(...)` to its consumers. The token
guards below check every caller against it (shared.guards installs them on each app).
"""

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    MetaData,
    String,
    Table,
    exists,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import (
    API_TOKEN_MAX_DAYS,
    SESSION_TOKEN_MAX_MINUTES,
    CurrentUser,
    SessionEnded,
    TokenRevoked,
    revoked_sessions_table,
)
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


async def _on_session_revoked(session: AsyncSession, envelope: Envelope, payload: EventData) -> None:
    values = [{"sid": sid, "person_id": payload.person_id, "revoked_at": envelope.time,
               "expires_at": envelope.time + timedelta(minutes=SESSION_TOKEN_MAX_MINUTES)} for sid in payload.session_ids]
    if values:
        await session.execute(insert(revoked_sessions_table).values(values).on_conflict_do_nothing())


PERSON_SNAPSHOT_EVENTS = ("hearth.person.created", "hearth.person.updated", "hearth.person.deactivated",
                          "hearth.person.reactivated")


def people_consumer(settings: HearthSettings) -> EventConsumer:
    handlers = {t: _on_person for t in PERSON_SNAPSHOT_EVENTS} | {"hearth.api_token.revoked": _on_api_token_revoked,
                                                                   "hearth.session.revoked": _on_session_revoked}
    return EventConsumer(name=f"{settings.service_name}.directory", topics=[settings.topic_people],
                         handlers=handlers, max_attempts=settings.consumer_max_attempts)


async def get_person(session: AsyncSession, person_id) -> dict | None:
    row = (await session.execute(select(directory_people).where(directory_people.c.id == person_id))).mappings().first()
    return dict(row) if row else None


async def _person_and(session: AsyncSession, user: CurrentUser, flag):
    """One round trip: `flag`, and the person's active flag and roles (NULL when not in the read model)."""
    person = directory_people.c.id == user.id
    return (await session.execute(select(flag.label("flag"),
                                         select(directory_people.c.active).where(person).scalar_subquery().label("active"),
                                         select(directory_people.c.roles).where(person).scalar_subquery().label("roles"))
                                  )).one()


async def check_api_token(session: AsyncSession, user: CurrentUser) -> CurrentUser:
    """Refuse a revoked API token or one of a deactivated person, from this service's own tables.

    Roles shrink to those the person still holds in the directory (a demoted admin's token is no admin)."""
    row = await _person_and(session, user, exists().where(revoked_tokens_table.c.jti == user.token_id))
    if row.flag:
        raise TokenRevoked("This API token has been revoked.")
    if row.active is None:  # not in the read model yet (events lag a new person): the signature is the proof
        return user
    if not row.active:
        raise TokenRevoked("The person this API token belongs to is deactivated.")
    return replace(user, roles=user.roles & frozenset(row.roles))


async def check_session_token(session: AsyncSession, user: CurrentUser) -> CurrentUser:
    """Refuse an ended session or a deactivated person's token; roles are the directory's, not the token's."""
    row = await _person_and(session, user, exists().where(revoked_sessions_table.c.sid == user.session_id))
    if row.flag:
        raise SessionEnded("This sign-in has ended; sign in again.")
    if row.active is None:  # not in the read model yet: the token's own claims are all we know
        return user
    if not row.active:
        raise TokenRevoked("This person is deactivated.")
    return replace(user, roles=frozenset(row.roles))
