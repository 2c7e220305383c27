import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.posts.auth.models import RefreshToken
from services.posts.auth.passwords import verify_password
from services.posts.auth.schemas import TokenPair
from services.posts.config import Settings
from services.posts.people import service as people
from services.posts.people.models import Person
from shared.auth import SigningKey
from shared.db import utcnow
from shared.errors import Unauthorized


class InvalidCredentials(Unauthorized):
    code, title = "invalid-credentials", "Invalid email or password"


class InvalidRefreshToken(Unauthorized):
    code, title = "invalid-refresh-token", "Invalid refresh token"


@dataclass
class TokenIssuer:
    key: SigningKey
    settings: Settings

    def access_token(self, person: Person) -> str:
        return self.key.sign(subject=person.id, roles=list(person.roles), scopes=None,
                             ttl=timedelta(minutes=self.settings.access_token_minutes),
                             issuer=self.settings.jwt_issuer, audience=self.settings.jwt_audience)

    def jwks(self) -> dict:
        return {"keys": [self.key.public_jwk()]}


def load_signing_key(settings: Settings) -> SigningKey:
    """The configured key; in dev/test without one, a fresh key (tokens die with the process)."""
    if settings.jwt_private_key:
        return SigningKey(settings.jwt_private_key.encode())
    if settings.jwt_private_key_file:
        return SigningKey(Path(settings.jwt_private_key_file).read_bytes())
    return SigningKey(SigningKey.generate_pem())


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _issue(session: AsyncSession, issuer: TokenIssuer, person: Person, family_id: UUID) -> TokenPair:
    refresh = secrets.token_urlsafe(32)
    session.add(RefreshToken(person_id=person.id, family_id=family_id, token_hash=_hash(refresh),
                             expires_at=utcnow() + timedelta(days=issuer.settings.refresh_token_days)))
    await session.commit()
    return TokenPair(access_token=issuer.access_token(person), refresh_token=refresh,
                     expires_in=issuer.settings.access_token_minutes * 60)


async def login(session: AsyncSession, *, issuer: TokenIssuer, email: str, password: str) -> TokenPair:
    person = await people.get_by_email(session, email=email)
    if not verify_password(person.password_hash if person else None, password) or not person.active:
        raise InvalidCredentials()
    return await _issue(session, issuer, person, family_id=uuid7())


async def refresh(session: AsyncSession, *, issuer: TokenIssuer, refresh_token: str) -> TokenPair:
    """Rotate a refresh token; presenting an already-rotated one revokes its whole family (theft)."""
    token = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _hash(refresh_token))
                                 .with_for_update())
    if token is None or token.revoked_at is not None or token.expires_at <= utcnow():
        raise InvalidRefreshToken()
    if token.rotated_at is not None:
        await _revoke_family(session, token.family_id)
        await session.commit()
        raise InvalidRefreshToken("This refresh token was already used; every session from that sign-in is ended.")
    person = await people.get(session, person_id=token.person_id)
    if person is None or not person.active:
        raise InvalidRefreshToken()
    token.rotated_at = utcnow()
    return await _issue(session, issuer, person, family_id=token.family_id)


async def logout(session: AsyncSession, *, refresh_token: str) -> None:
    token = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _hash(refresh_token)))
    if token is not None:
        await _revoke_family(session, token.family_id)
        await session.commit()


async def _revoke_family(session: AsyncSession, family_id: UUID) -> None:
    await session.execute(update(RefreshToken).where(RefreshToken.family_id == family_id,
                                                     RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
