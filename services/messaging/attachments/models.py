from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime
from sqlmodel import Field
from uuid6 import uuid7

from services.messaging.db import Table
from shared.db import utcnow

FILENAME_MAX = 255
MAX_PER_MESSAGE = 10


class Attachment(Table, table=True):
    """A file uploaded into a conversation; its members may read it, nobody else."""

    __tablename__ = "message_attachments"

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    conversation_id: UUID = Field(foreign_key="conversations.id", ondelete="CASCADE", index=True)
    uploader_id: UUID
    message_id: UUID | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL", index=True)
    storage_key: str = Field(max_length=300)
    filename: str = Field(max_length=FILENAME_MAX)
    content_type: str = Field(max_length=100)
    size: int
    width: int | None = None
    height: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
