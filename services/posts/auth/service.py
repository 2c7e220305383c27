import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.posts.auth import throttle
from services.posts.auth.models import RefreshToken
from services.posts.auth.own_session import own_session
from services.posts.auth.passwords import verify_password_off_loop
from services.posts.auth.schemas import TokenPair
from services.posts.auth.sessions import end_sessions
from services.posts.config import Settings
from services.posts.people import service as people
from services.posts.people.models import Person
from shared.auth import (
    API_TOKEN_TYPE,
    CurrentUser,
    SessionEnded,
    SigningKey,
    StatementGuard,
    TokenRevoked,
    public_jwks_from_pem,
    revoked_sessions_table,
)
from shared.db import utcnow
from shared.errors import Unauthorized


class InvalidCredentials(Unauthorized):
    code, title = "invalid-credentials", "Invalid email or password"


class InvalidRefreshToken(Unauthorized):
    code, title = "invalid-refresh-token", "Invalid refresh token"


@dataclass
class TokenIssuer:
    """Signs with the current key; publishes it together with the previous (rotated-out) public keys."""

    key: SigningKey
    settings: Settings
    previous_jwks: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if not self.previous_jwks:
            # Deduplicated by kid: a key listed twice (or the current key left in the list) is published once.
            configured = {k["kid"]: k for k in public_jwks_from_pem(self.settings.previous_keys_pem)}
            self.previous_jwks = [k for kid, k in configured.items() if kid != self.key.kid]

    def access_token(self, person: Person, *, session_id: UUID | None = None) -> str:
        return self.key.sign(subject=person.id, roles=list(person.roles), scopes=None,
                             ttl=timedelta(minutes=self.settings.access_token_minutes),
                             issuer=self.settings.jwt_issuer, audience=self.settings.jwt_audience,
                             session_id=session_id)

    def api_token(self, *, person: Person, token_id: UUID, scopes: list[str], ttl: timedelta) -> str:
        return self.key.sign(subject=person.id, roles=list(person.roles), scopes=scopes, ttl=ttl,
                             issuer=self.settings.jwt_issuer, audience=self.settings.jwt_audience,
                             token_id=str(token_id), token_type=API_TOKEN_TYPE)

    def jwks(self) -> dict:
        return {"keys": [self.key.public_jwk(), *self.previous_jwks]}


def load_signing_key(settings: Settings) -> SigningKey:
    """The configured key; in dev/test without one, a fresh key (tokens die with the process)."""
    if settings.jwt_private_key:
        return SigningKey(settings.jwt_private_key.encode())
    if settings.jwt_private_key_file:
        return SigningKey(Path(settings.jwt_private_key_file).read_bytes())
    return SigningKey(SigningKey.generate_pem())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_pair(session: AsyncSession, *, issuer: TokenIssuer, person: Person, family_id: UUID) -> TokenPair:
    """A fresh access + refresh token for a person who just proved who they are."""
    refresh = secrets.token_urlsafe(32)
    session.add(RefreshToken(person_id=person.id, family_id=family_id, token_hash=token_hash(refresh),
                             expires_at=utcnow() + timedelta(days=issuer.settings.refresh_token_days)))
    await session.flush()
    return TokenPair(access_token=issuer.access_token(person, session_id=family_id), refresh_token=refresh,
                     expires_in=issuer.settings.access_token_minutes * 60)


async def login(session: AsyncSession, *, issuer: TokenIssuer, email: str, password: str,
                ip: str | None = None) -> TokenPair:
    """Password sign-in, refused with 429 while the account (or address) has too many recent failures."""
    email = email.strip().lower()
    # Counted in a session of its own: the failure stands when this request fails (wrong password), and
    # it is committed before the password is hashed, so no transaction stays open meanwhile.
    async with own_session(session) as own:
        failure_id = await throttle.begin_attempt(own, settings=issuer.settings, email=email, ip=ip)
        person = await people.get_by_email(own, email=email)
    if not await verify_password_off_loop(person.password_hash if person else None, password) or not person.active:
        raise InvalidCredentials()
    await throttle.forgive(session, failure_id=failure_id)
    return await issue_pair(session, issuer=issuer, person=person, family_id=uuid7())


async def refresh(session: AsyncSession, *, issuer: TokenIssuer, refresh_token: str) -> TokenPair:
    """Rotate a refresh token; presenting an already-rotated one revokes its whole family (theft)."""
    hashed, now = token_hash(refresh_token), utcnow()
    await _end_family_if_reused(session, hashed)
    # Rotated by a conditional update: of two uses of one token, exactly one gets a row back.
    token = (await session.execute(update(RefreshToken).where(
        RefreshToken.token_hash == hashed, RefreshToken.rotated_at.is_(None), RefreshToken.revoked_at.is_(None),
        RefreshToken.expires_at > now).values(rotated_at=now)
        .returning(RefreshToken.person_id, RefreshToken.family_id))).first()
    if token is None:
        await _end_family_if_reused(session, hashed)  # a parallel use of the same token rotated it first
        raise InvalidRefreshToken()
    person = await people.get(session, person_id=token.person_id)
    if person is None or not person.active:
        raise InvalidRefreshToken()
    return await issue_pair(session, issuer=issuer, person=person, family_id=token.family_id)


async def _end_family_if_reused(session: AsyncSession, hashed: str) -> None:
    """A rotated token presented again was stolen (or leaked): end every session of its sign-in and refuse."""
    # In a session of its own: the sign-in stays ended although this request fails. The request's session
    # holds no lock on these rows (it has not written yet, or its update matched nothing).
    async with own_session(session) as own:
        reused = (await own.execute(select(RefreshToken.person_id, RefreshToken.family_id).where(
            RefreshToken.token_hash == hashed, RefreshToken.rotated_at.is_not(None),
            RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > utcnow()))).first()
        if reused is not None:
            await end_sessions(own, person_id=reused.person_id, family_ids=[reused.family_id])
    if reused is not None:
        raise InvalidRefreshToken("This refresh token was already used; every session from that sign-in is ended.")


async def logout(session: AsyncSession, *, refresh_token: str) -> None:
    token = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash(refresh_token)))
    if token is not None:
        await end_sessions(session, person_id=token.person_id, family_ids=[token.family_id])


# Built once: compiling this per request was a tenth of a home-feed request's CPU (DESIGN: every request
# checks it, so it is the hottest statement of posts).
_SESSION_FACTS = select(Person.active, Person.roles,
                        exists().where(revoked_sessions_table.c.sid == bindparam("sid")).label("ended")
                        ).where(Person.id == bindparam("person_id"))


def _session_decision(facts: Mapping | None, user: CurrentUser) -> CurrentUser:
    if facts is None or not facts["active"]:
        raise TokenRevoked("This person is unknown or deactivated.")
    if facts["ended"]:
        raise SessionEnded("This sign-in has ended; sign in again.")
    return replace(user, roles=frozenset(facts["roles"]))


# posts' guard for session tokens: the person and revoked_sessions here are the truth. A token of someone
# posts does not know is refused: posts signed every real one. One statement, so the rate limiter reads it
# in the round trip of its count (shared.auth.StatementGuard).
check_session_token = StatementGuard(facts=_SESSION_FACTS, decide=_session_decision)
