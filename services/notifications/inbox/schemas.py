from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class NotificationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    kind: str
    title: str = ""  # "Ana Lopez and 4 others reacted to your post"
    actor_id: UUID | None
    actor_count: int
    actor_ids: list[UUID]
    subject_type: str
    subject_id: UUID
    post_id: UUID | None
    comment_id: UUID | None
    group_id: UUID | None
    conversation_id: UUID | None
    excerpt: str
    created_at: datetime
    updated_at: datetime
    read_at: datetime | None


class UnreadCount(BaseModel):
    unread: int


class ReadAll(BaseModel):
    marked: int
