"""Integrator API tokens: JWTs every service verifies locally, revocable through revoked_tokens."""

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.posts.auth.models import ApiToken
from services.posts.auth.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenPublic
from services.posts.auth.service import TokenIssuer, token_hash
from services.posts.people import service as people
from services.posts.people.models import Person
from shared.auth import CurrentUser, TokenRevoked
from shared.db import utcnow
from shared.errors import Forbidden, NotFound
from shared.events import ApiTokenRevoked
from shared.outbox import add_event, revoked_tokens_table
from shared.pagination import PageParams, paginate

# last_used_at is for humans auditing their tokens; minute precision saves a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenNotFound(NotFound):
    code, title = "api-token-not-found", "API token not found"


class PersonInactive(Forbidden):
    code, title = "person-inactive", "Person deactivated"


async def create(session: AsyncSession, *, issuer: TokenIssuer, user: CurrentUser,
                 data: ApiTokenCreate) -> ApiTokenCreated:
    """Mint a token for the caller carrying the roles they hold now (never more) and the asked scopes."""
    person = await people.get(session, person_id=user.id)
    if person is None or not person.active:
        raise PersonInactive("Only an active person can create API tokens.")
    days = data.expires_in_days or issuer.settings.api_token_default_days
    scopes = sorted(set(data.scopes))
    token_id, ttl = uuid7(), timedelta(days=days)
    token = issuer.api_token(person=person, token_id=token_id, scopes=scopes, ttl=ttl)
    row = ApiToken(id=token_id, person_id=person.id, name=data.name, scopes=scopes, roles=list(person.roles),
                   token_hash=token_hash(token), expires_at=utcnow() + ttl)
    session.add(row)
    await session.flush()
    return ApiTokenCreated.model_validate(ApiTokenPublic.model_validate(row).model_dump() | {"token": token})


async def get_all(session: AsyncSession, *, person_id: UUID, page: PageParams):
    """A person's tokens, newest first, revoked and expired ones included."""
    stmt = select(ApiToken).where(ApiToken.person_id == person_id)
    return await paginate(session, stmt, columns=[ApiToken.created_at, ApiToken.id], page=page)


async def revoke(session: AsyncSession, *, person_id: UUID, token_id: UUID) -> None:
    """Revoke one of the person's tokens here and, through the event, in every other service."""
    token = await session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.person_id == person_id)
                                 .with_for_update())
    if token is None:  # someone else's token is as unknown as a made-up id
        raise ApiTokenNotFound()
    if token.revoked_at is not None:
        return  # revoking twice is a no-op, not a second event
    token.revoked_at = utcnow()
    await session.execute(insert(revoked_tokens_table).values(jti=token.id, revoked_at=token.revoked_at,
                                                              expires_at=token.expires_at).on_conflict_do_nothing())
    await add_event(session, ApiTokenRevoked(token_id=token.id, person_id=person_id), subject=token.id,
                    actor=person_id)


async def check_api_token(session: AsyncSession, user: CurrentUser) -> CurrentUser:
    """posts' guard for API tokens: the token row and the person are the truth here, not a read model."""
    row = (await session.execute(
        select(ApiToken.revoked_at, ApiToken.last_used_at, Person.active, Person.roles)
        .join(Person, Person.id == ApiToken.person_id)
        .where(ApiToken.id == user.token_id, ApiToken.person_id == user.id))).first()
    if row is None or row.revoked_at is not None:
        raise TokenRevoked("This API token has been revoked.")
    if not row.active:
        raise TokenRevoked("The person this API token belongs to is deactivated.")
    now = utcnow()
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION:
        # In the request's unit of work (a failed request does not count as a use, which is fine for an
        # audit hint); SKIP LOCKED, so parallel requests with the token never wait for the one that writes,
        # and conditional, so they write once per minute across replicas.
        stale = (select(ApiToken.id).where(
            ApiToken.id == user.token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_RESOLUTION))
            .with_for_update(skip_locked=True))
        await session.execute(update(ApiToken).where(ApiToken.id.in_(stale)).values(last_used_at=now))
    return replace(user, roles=user.roles & frozenset(row.roles))
