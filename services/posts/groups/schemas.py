from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, model_validator

from services.posts.groups.models import Group
from services.posts.people.api import PersonSummary
from shared.types import SafeText

Visibility = Literal["public", "private", "secret"]
GroupRole = Literal["owner", "admin", "member"]
OfficialKind = Literal["department", "company", "announcements"]


class GroupBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SafeText(Group.name, blank=False)
    description: SafeText(Group.description) = ""
    visibility: Visibility = "public"
    official: bool = False
    official_kind: OfficialKind | None = None
    admins_only_posting: bool = False

    @model_validator(mode="after")
    def _kind_needs_official(self):
        if self.official_kind is not None and not self.official:
            raise ValueError("official_kind is only for official groups")
        return self


class GroupCreateRequest(GroupBase):
    """What a person sends to create a group."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"name": "Platform guild", "description": "Infra talk", "visibility": "private"}]})


class GroupCreate(GroupBase):
    """What the service creates from: a person's request, or provisioning (SCIM) with the IdP's id."""

    external_id: SafeText(Group.external_id) | None = None
    provisioned: bool = False


class GroupUpdate(BaseModel):
    """PATCH settings: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: SafeText(Group.name, blank=False) | None = None
    description: SafeText(Group.description) | None = None
    visibility: Visibility | None = None
    official: bool | None = None
    official_kind: OfficialKind | None = None
    admins_only_posting: bool | None = None

    @model_validator(mode="after")
    def _no_null_for_required_columns(self):
        nulls = sorted(f for f in self.model_fields_set - {"official_kind"} if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self


class GroupPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    description: str
    visibility: Visibility
    official: bool
    official_kind: str | None
    all_company: bool
    admins_only_posting: bool
    archived: bool
    created_at: datetime
    updated_at: datetime
    my_role: GroupRole | None = None  # the caller's role; None when not a member


class GroupSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    visibility: Visibility
    official: bool


class MemberPublic(BaseModel):
    person: PersonSummary
    role: GroupRole
    joined_at: datetime | None  # None for the implicit members of the "All company" group


class JoinState(BaseModel):
    state: Literal["member", "requested"]
    request_id: UUID | None = None


class JoinRequestPublic(BaseModel):
    id: UUID
    person: PersonSummary
    created_at: datetime


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: UUID


class InvitePublic(BaseModel):
    id: UUID
    group: GroupSummary
    person_id: UUID
    inviter_id: UUID
    created_at: datetime


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: GroupRole


class OwnershipTransfer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: UUID
