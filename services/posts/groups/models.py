from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, Column, DateTime, Index, String, UniqueConstraint, text
from sqlmodel import Field
from uuid6 import uuid7

from services.posts.db import Table
from shared.db import utcnow


class Group(Table, table=True):
    __tablename__ = "groups"
    __table_args__ = (
        CheckConstraint("visibility IN ('public', 'private', 'secret')", name="visibility"),
        # At most one "All company" group; its membership is implicit (every active person).
        Index("uq_groups_all_company", "all_company", unique=True, postgresql_where=text("all_company")),
    )

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    name: str = Field(max_length=200, index=True)
    description: str = Field(default="", max_length=2000)
    visibility: str = Field(sa_column=Column(String(16), nullable=False))  # public | private | secret
    official: bool = False
    official_kind: str | None = Field(default=None, max_length=32)  # department | company | announcements
    all_company: bool = False
    admins_only_posting: bool = False
    archived: bool = False
    external_id: str | None = Field(default=None, max_length=200, unique=True)  # the identity provider's id (SCIM)
    provisioned: bool = False
    created_by: UUID | None = Field(default=None, foreign_key="people.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class GroupMember(Table, table=True):
    __tablename__ = "group_members"
    __table_args__ = (CheckConstraint("role IN ('owner', 'admin', 'member')", name="role"),)

    group_id: UUID = Field(foreign_key="groups.id", primary_key=True)
    person_id: UUID = Field(foreign_key="people.id", primary_key=True, index=True)
    role: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class GroupInvite(Table, table=True):
    """A pending invitation; deleted once accepted or declined."""

    __tablename__ = "group_invites"
    __table_args__ = (UniqueConstraint("group_id", "person_id"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    group_id: UUID = Field(foreign_key="groups.id")
    person_id: UUID = Field(foreign_key="people.id", index=True)
    inviter_id: UUID = Field(foreign_key="people.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class GroupJoinRequest(Table, table=True):
    """A pending request to join a private group; deleted once decided."""

    __tablename__ = "group_join_requests"
    __table_args__ = (UniqueConstraint("group_id", "person_id"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    group_id: UUID = Field(foreign_key="groups.id")
    person_id: UUID = Field(foreign_key="people.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
