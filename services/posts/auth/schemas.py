from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from shared.auth import API_TOKEN_MAX_DAYS, SCOPES, Scope


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=16, max_length=256)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class ApiTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    expires_in_days: int | None = Field(default=None, ge=1, le=API_TOKEN_MAX_DAYS)

    @field_validator("name")
    @classmethod
    def _strip_name(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("the name cannot be blank")
        return name.strip()


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
