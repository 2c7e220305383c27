from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.types import Email

Role = Literal["member", "moderator", "communications", "admin"]


class PersonPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str
    handle: str
    display_name: str
    title: str | None
    department: str | None
    location: str | None
    manager_id: UUID | None
    hire_date: date | None
    leader: bool
    official: bool
    protected: bool
    active: bool
    roles: list[str]
    created_at: datetime


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    display_name: str = Field(min_length=1, max_length=200)
    handle: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    password: str | None = Field(default=None, min_length=8, max_length=256)
    title: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    manager_id: UUID | None = None
    hire_date: date | None = None
    leader: bool = False
    official: bool = False
    roles: list[Role] = ["member"]
