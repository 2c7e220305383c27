"""Presence from socket activity across a person's devices: online > away > offline."""

from datetime import timedelta
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.realtime.models import PresenceConnection
from shared.db import utcnow
from shared.events.messaging import PresenceChanged
from shared.outbox import add_event

# A replica refreshes its connections' rows every HEARTBEAT; rows older than STALE belong to a dead replica.
HEARTBEAT = timedelta(seconds=30)
STALE = timedelta(seconds=90)
RANK = {"online": 2, "away": 1}


async def status_of(session: AsyncSession, person_id: UUID) -> str:
    statuses = set(await session.scalars(select(PresenceConnection.status).where(
        PresenceConnection.person_id == person_id, PresenceConnection.last_seen > utcnow() - STALE)))
    return max(statuses, key=RANK.get) if statuses else "offline"


async def statuses(session: AsyncSession, person_ids: list[UUID]) -> dict[UUID, str]:
    rows = await session.execute(select(PresenceConnection.person_id, PresenceConnection.status).where(
        PresenceConnection.person_id.in_(person_ids), PresenceConnection.last_seen > utcnow() - STALE))
    out = {p: "offline" for p in person_ids}
    for person_id, status in rows:
        if RANK[status] > RANK.get(out[person_id], 0):
            out[person_id] = status
    return out


async def set_connection(session: AsyncSession, *, connection_id: UUID, person_id: UUID,
                         status: str | None) -> str | None:
    """Record a connection's status (None: it closed); returns the person's new presence when it changed."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(str(person_id)))))
    before = await status_of(session, person_id)
    if status is None:
        await session.execute(delete(PresenceConnection).where(PresenceConnection.id == connection_id))
    else:
        row = await session.get(PresenceConnection, connection_id)
        if row is None:
            session.add(PresenceConnection(id=connection_id, person_id=person_id, status=status))
        else:
            row.status, row.last_seen = status, utcnow()
        await session.flush()
    after = await status_of(session, person_id)
    if after != before:
        await add_event(session, PresenceChanged(person_id=person_id, status=after), subject=person_id,
                        actor=person_id)
    await session.commit()
    return after if after != before else None


async def touch(session: AsyncSession, connection_ids: list[UUID]) -> None:
    if connection_ids:
        await session.execute(update(PresenceConnection).where(PresenceConnection.id.in_(connection_ids))
                              .values(last_seen=utcnow()))
        await session.commit()
