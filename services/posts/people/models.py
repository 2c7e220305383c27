from datetime import date, datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field
from uuid6 import uuid7

from services.posts.db import Table
from shared.db import utcnow


class Person(Table, table=True):
    __tablename__ = "people"
    __table_args__ = (
        Index("ix_people_display_name_id", "display_name", "id"),  # the directory's keyset order
        # A department's directory page: the filter, the order and the keyset cursor in one index.
        Index("ix_people_lower_department_display_name_id", text("lower(department)"), "display_name", "id"),
        Index("uq_people_lower_user_name", text("lower(user_name)"), unique=True),  # SCIM: caseExact false
    )

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    email: str = Field(max_length=320, unique=True)  # stored lower-cased
    handle: str = Field(max_length=64, unique=True)  # what @mentions use
    display_name: str = Field(max_length=200)
    title: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, max_length=200, index=True)
    location: str | None = Field(default=None, max_length=200, index=True)  # site / office
    country: str | None = Field(default=None, max_length=2)  # ISO 3166-1 alpha-2
    time_zone: str | None = Field(default=None, max_length=64)  # IANA name
    manager_id: UUID | None = Field(default=None, foreign_key="people.id", index=True)
    hire_date: date | None = None
    skills: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String(100)), nullable=False,
                                                                      server_default="{}"))
    bio: str | None = Field(default=None, max_length=2000)
    avatar_url: str | None = Field(default=None, max_length=1000)
    pronouns: str | None = Field(default=None, max_length=40)
    employee_number: str | None = Field(default=None, max_length=64)
    organization: str | None = Field(default=None, max_length=200)
    external_id: str | None = Field(default=None, max_length=200, unique=True)  # the identity provider's id (SCIM)
    user_name: str | None = Field(default=None, max_length=320)  # SCIM userName, any unique string, as given
    # The User as the identity provider last sent it (no password): attributes Hearth has no column for
    # (name parts, phone numbers, locale, …) read back from here, so every advertised one round-trips.
    scim_profile: dict | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    # Set by SCIM DELETE: the person stays (deactivated) but SCIM answers 404 for them until re-provisioned.
    scim_deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    leader: bool = False
    official: bool = False
    protected: bool = False
    active: bool = True
    roles: list[str] = Field(default_factory=lambda: ["member"], sa_column=Column(ARRAY(String(32)), nullable=False))
    password_hash: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
