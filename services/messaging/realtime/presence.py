"""Presence from socket activity across a person's devices and replicas: online > away > offline.

Each replica keeps one row per person it holds sockets of (the best status over those sockets) and
writes the changes of the last second in one transaction, emitting `hearth.presence.changed` when a
person's overall status changes. Rows are refreshed every HEARTBEAT; a crashed replica's rows age
out after STALE.
"""

import uuid
from datetime import timedelta
from uuid import UUID

from sqlalchemy import String, any_, column, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.realtime.models import PresenceConnection
from shared.db import utcnow
from shared.events.messaging import PresenceChanged
from shared.outbox import add_event

HEARTBEAT = timedelta(seconds=30)
STALE = timedelta(seconds=90)
RANK = {"online": 2, "away": 1}


def row_id(replica_id: UUID, person_id: UUID) -> UUID:
    return uuid.uuid5(replica_id, str(person_id))


def best(statuses) -> str:
    statuses = [s for s in statuses if s in RANK]
    return max(statuses, key=RANK.get) if statuses else "offline"


async def statuses(session: AsyncSession, person_ids: list[UUID]) -> dict[UUID, str]:
    rows = await session.execute(select(PresenceConnection.person_id, PresenceConnection.status).where(
        PresenceConnection.person_id.in_(person_ids), PresenceConnection.last_seen > utcnow() - STALE))
    found: dict[UUID, list[str]] = {}
    for person_id, status in rows:
        found.setdefault(person_id, []).append(status)
    return {p: best(found.get(p, [])) for p in person_ids}


async def apply(session: AsyncSession, *, replica_id: UUID, local: dict[UUID, str]) -> dict[UUID, str]:
    """Write this replica's status per person (`offline`: no socket here any more) in the caller's transaction
    (the presence job commits it); returns the people whose overall presence changed, with their new status."""
    people = sorted(local)
    # One writer per person at a time, locked in a fixed order (no deadlocks), in one round trip
    # (10,000 sockets connecting were 10,000 lock statements).
    keys = select(func.hashtext(literal("presence:") + func.cast(column("p"), String)).label("k")) \
        .select_from(func.unnest(literal(people, ARRAY(PG_UUID(as_uuid=True)))).alias("p")) \
        .order_by(column("p")).subquery()
    await session.execute(select(func.count(func.pg_advisory_xact_lock(keys.c.k))))
    before = await statuses(session, people)
    gone = [row_id(replica_id, p) for p in people if local[p] == "offline"]
    if gone:
        await session.execute(delete(PresenceConnection).where(PresenceConnection.id.in_(gone)))
    here = [{"id": row_id(replica_id, p), "person_id": p, "status": local[p], "last_seen": utcnow()}
            for p in people if local[p] != "offline"]
    if here:
        stmt = insert(PresenceConnection).values(here)
        await session.execute(stmt.on_conflict_do_update(index_elements=[PresenceConnection.id], set_={
            "status": stmt.excluded.status, "last_seen": stmt.excluded.last_seen}))
    after = await statuses(session, people)
    changed = {p: after[p] for p in people if after[p] != before[p]}
    for person_id, status in changed.items():
        await add_event(session, PresenceChanged(person_id=person_id, status=status), subject=person_id,
                        actor=person_id)
    return changed


async def touch(session: AsyncSession, *, replica_id: UUID, person_ids: list[UUID]) -> None:
    if person_ids:
        ids = literal([row_id(replica_id, p) for p in person_ids], ARRAY(PG_UUID(as_uuid=True)))
        await session.execute(update(PresenceConnection).where(PresenceConnection.id == any_(ids))  # one parameter
                              .values(last_seen=utcnow()))
