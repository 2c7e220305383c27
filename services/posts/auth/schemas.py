from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, computed_field

from services.posts.auth.models import ApiToken, LoginFailure
from services.posts.people.schemas import PASSWORD_MAX_LENGTH
from shared.auth import API_TOKEN_MAX_DAYS, SCOPES, Scope
from shared.types import SafeText


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: SafeText(LoginFailure.email, min_length=3)  # as typed: unknown accounts are throttled alike
    password: SafeText(PASSWORD_MAX_LENGTH, min_length=1)


class RefreshRequest(BaseModel):
    refresh_token: SafeText(256, min_length=16)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class ApiTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SafeText(ApiToken.name, blank=False)
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    expires_in_days: int | None = Field(default=None, ge=1, le=API_TOKEN_MAX_DAYS)


class ApiTokenPublic(BaseModel):
    """A token's metadata; the secret itself is never shown again after creation."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    scopes: list[str]
    roles: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @computed_field
    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="The bearer token. Shown once: Hearth keeps only its hash.")
