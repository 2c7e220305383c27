from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class NotificationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    kind: str
    actor_id: UUID | None
    subject_type: str
    subject_id: UUID
    excerpt: str
    created_at: datetime
    read_at: datetime | None


class UnreadCount(BaseModel):
    unread: int
