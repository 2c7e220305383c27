from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime, Index, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field
from uuid6 import uuid7

from services.posts.db import Table
from shared.context import ADDRESS_MAX_LENGTH
from shared.db import utcnow


class RefreshToken(Table, table=True):
    """A rotating refresh token, stored as a hash; tokens rotated from one login share a family."""

    __tablename__ = "refresh_tokens"

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    person_id: UUID = Field(foreign_key="people.id", index=True)
    family_id: UUID = Field(index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    rotated_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ApiToken(Table, table=True):
    """An integrator token: its id is the JWT's `jti`; the token itself is shown once and kept as a hash."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_person_created", "person_id", "created_at", "id"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    person_id: UUID = Field(foreign_key="people.id")
    name: str = Field(max_length=100)
    scopes: list[str] = Field(sa_column=Column(ARRAY(String(32)), nullable=False))
    roles: list[str] = Field(sa_column=Column(ARRAY(String(32)), nullable=False))
    token_hash: str = Field(max_length=64, unique=True)  # SHA-256: lets a leaked token be looked up
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    last_used_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class LoginFailure(Table, table=True):
    """One failed password sign-in; counted per account and per address over a sliding window."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_email_failed", "email", "failed_at"),
                      Index("ix_login_failures_ip_failed", "ip", "failed_at"))

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    email: str = Field(max_length=320)  # as typed, lower-cased: unknown accounts are throttled alike
    ip: str | None = Field(default=None, max_length=ADDRESS_MAX_LENGTH)  # shared.context.client_address
    failed_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class SsoLogin(Table, table=True):
    """A started OIDC sign-in: the PKCE verifier and nonce wait here for the callback, used once."""

    __tablename__ = "sso_logins"

    state_hash: str = Field(max_length=64, primary_key=True)
    nonce: str = Field(max_length=128)
    code_verifier: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
