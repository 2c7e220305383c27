from uuid import UUID

from pydantic import BaseModel


class AttachmentPublic(BaseModel):
    id: UUID
    conversation_id: UUID
    message_id: UUID | None
    filename: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
