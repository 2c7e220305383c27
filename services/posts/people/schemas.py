from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from shared.types import Email

Role = Literal["member", "moderator", "communications", "admin"]
Skill = Field(min_length=1, max_length=100)


class PersonPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str
    handle: str
    display_name: str
    title: str | None
    department: str | None
    location: str | None
    country: str | None
    time_zone: str | None
    manager_id: UUID | None
    hire_date: date | None
    skills: list[str]
    bio: str | None
    avatar_url: str | None
    pronouns: str | None
    leader: bool
    official: bool
    protected: bool
    active: bool
    roles: list[str]
    created_at: datetime


class PersonSummary(BaseModel):
    """The short form used in lists, org charts and follower lists."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    handle: str
    display_name: str
    title: str | None
    department: str | None
    avatar_url: str | None
    protected: bool


class ProfileFields(BaseModel):
    """What a person may edit on their own profile."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    title: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    time_zone: str | None = Field(default=None, max_length=64)
    skills: list[str] | None = Field(default=None, max_length=50)
    bio: str | None = Field(default=None, max_length=2000)
    avatar_url: HttpUrl | None = None
    pronouns: str | None = Field(default=None, max_length=40)
    protected: bool | None = None


class AdminFields(ProfileFields):
    """What an admin (or provisioning) may also set."""

    email: Email | None = None
    department: str | None = Field(default=None, max_length=200)
    manager_id: UUID | None = None
    hire_date: date | None = None
    leader: bool | None = None
    official: bool | None = None
    roles: list[Role] | None = None
    employee_number: str | None = Field(default=None, max_length=64)
    organization: str | None = Field(default=None, max_length=200)


class PersonCreate(AdminFields):
    email: Email
    display_name: str = Field(min_length=1, max_length=200)
    handle: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    password: str | None = Field(default=None, min_length=8, max_length=256)
    external_id: str | None = Field(default=None, max_length=200)
    roles: list[Role] = ["member"]
    active: bool = True


class OrgChart(BaseModel):
    person: PersonSummary
    managers: list[PersonSummary]  # nearest first, up to the top of the company
    reports: list[PersonSummary]  # direct reports
