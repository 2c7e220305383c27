"""Ending sign-ins: the refresh tokens stop, and their access tokens are refused in every service."""

from datetime import timedelta
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.auth.models import RefreshToken
from shared.auth import SESSION_TOKEN_MAX_MINUTES, revoked_sessions_table
from shared.db import utcnow
from shared.events import SessionRevoked
from shared.outbox import add_event


async def end_sessions(session: AsyncSession, *, person_id: UUID, family_ids: list[UUID] | None = None) -> None:
    """End the given sign-ins of a person (all that are still open when None), in the caller's transaction.

    A session's id (`sid` in its access tokens) is its refresh-token family: posts refuses it from
    revoked_sessions at once, the other services when SessionRevoked reaches them."""
    open_tokens = (RefreshToken.person_id == person_id, RefreshToken.revoked_at.is_(None))
    if family_ids is None:
        family_ids = list(set(await session.scalars(select(RefreshToken.family_id).where(*open_tokens))))
    if not family_ids:
        return
    now = utcnow()
    await session.execute(update(RefreshToken).where(*open_tokens, RefreshToken.family_id.in_(family_ids))
                          .values(revoked_at=now))
    expires_at = now + timedelta(minutes=SESSION_TOKEN_MAX_MINUTES)
    await session.execute(insert(revoked_sessions_table).values(
        [{"sid": sid, "person_id": person_id, "revoked_at": now, "expires_at": expires_at} for sid in family_ids])
        .on_conflict_do_nothing())
    await add_event(session, SessionRevoked(person_id=person_id, session_ids=sorted(family_ids)),
                    subject=person_id, actor=person_id)
