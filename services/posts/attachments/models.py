from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime
from sqlmodel import Field
from uuid6 import uuid7

from services.posts.db import Table
from shared.db import utcnow

FILENAME_MAX = 255


class Attachment(Table, table=True):
    """An uploaded file in storage; readable by whoever may read the post it is attached to."""

    __tablename__ = "attachments"

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    owner_id: UUID = Field(foreign_key="people.id", index=True)
    post_id: UUID | None = Field(default=None, foreign_key="posts.id", index=True)
    position: int | None = None  # its place in the post's `attachment_ids` (1-based); None: upload order
    storage_key: str = Field(max_length=300)
    filename: str = Field(max_length=FILENAME_MAX)
    content_type: str = Field(max_length=100)
    size: int
    width: int | None = None
    height: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
