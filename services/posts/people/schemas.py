from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    model_validator,
)

from services.posts.people.models import Person
from shared.types import Email, SafeText, column_length

Role = Literal["member", "moderator", "communications", "admin"]
SKILL_MAX_LENGTH = 100  # the element size of people.skills
MAX_SKILLS = 50
PASSWORD_MAX_LENGTH = 256
NOT_NULLABLE = frozenset({"display_name", "email", "skills", "leader", "official", "protected", "roles"})
Skill = SafeText(SKILL_MAX_LENGTH, blank=False)


def _fits_avatar_column(url: HttpUrl) -> HttpUrl:
    # Stored as str(url); HttpUrl alone would allow 2,083 characters.
    if len(str(url)) > column_length(Person.avatar_url):
        raise ValueError(f"the URL must have at most {column_length(Person.avatar_url)} characters")
    return url


AvatarUrl = Annotated[HttpUrl, AfterValidator(_fits_avatar_column)]


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

    display_name: SafeText(Person.display_name, blank=False) | None = None
    title: SafeText(Person.title) | None = None
    location: SafeText(Person.location) | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    time_zone: SafeText(Person.time_zone) | None = None
    skills: list[Skill] | None = Field(default=None, max_length=MAX_SKILLS)
    bio: SafeText(Person.bio) | None = None
    avatar_url: AvatarUrl | None = None
    pronouns: SafeText(Person.pronouns) | None = None
    protected: bool | None = None

    @model_validator(mode="after")
    def _no_null_for_required_columns(self):
        # Omit a field to leave it alone; null would mean "no value", which these columns cannot hold.
        nulls = sorted(f for f in self.model_fields_set & NOT_NULLABLE if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self


class AdminFields(ProfileFields):
    """What an admin (or provisioning) may also set."""

    email: Email | None = None
    department: SafeText(Person.department) | None = None
    manager_id: UUID | None = None
    hire_date: date | None = None
    leader: bool | None = None
    official: bool | None = None
    roles: list[Role] | None = None
    employee_number: SafeText(Person.employee_number) | None = None
    organization: SafeText(Person.organization) | None = None


class PersonCreate(AdminFields):
    email: Email
    display_name: SafeText(Person.display_name, blank=False)
    handle: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    password: SafeText(PASSWORD_MAX_LENGTH, min_length=8) | None = None
    external_id: SafeText(Person.external_id) | None = None
    roles: list[Role] = ["member"]
    active: bool = True


class OrgChart(BaseModel):
    person: PersonSummary
    managers: list[PersonSummary]  # nearest first, up to the top of the company
    reports: list[PersonSummary]  # direct reports
