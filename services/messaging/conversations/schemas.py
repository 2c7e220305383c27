from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.messaging.conversations.models import MAX_MEMBERS, TITLE_MAX
from shared.types import SafeText

Title = SafeText(TITLE_MAX, blank=False)


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title
    member_ids: list[UUID] = Field(default=[], max_length=MAX_MEMBERS - 1)


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title


class MembersAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_ids: list[UUID] = Field(min_length=1, max_length=MAX_MEMBERS)


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "member"]


class MemberPublic(BaseModel):
    person_id: UUID
    role: str
    joined_at: datetime
    last_read_message_id: UUID | None = None  # None when receipts are not shown in this conversation


class ConversationPublic(BaseModel):
    id: UUID
    kind: str
    title: str | None
    created_by: UUID
    created_at: datetime
    last_message_at: datetime
    member_count: int
    unread: int = 0
    my_role: str | None = None
    last_read_message_id: UUID | None = None
    receipts: bool = False  # whether read receipts show in this conversation


class ConversationDetail(ConversationPublic):
    members: list[MemberPublic]


class UnreadTotal(BaseModel):
    unread: int
    conversations: int  # how many conversations have unread messages


class ReadUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: UUID


class PreferencesPublic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    read_receipts: bool
