from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime
from sqlmodel import Field
from uuid6 import uuid7

from services.posts.db import Table
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
