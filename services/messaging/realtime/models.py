from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime
from sqlmodel import Field

from services.messaging.db import Table, metadata
from shared.db import utcnow
from shared.realtime import FrameTables

frames = FrameTables(metadata)


class PresenceConnection(Table, table=True):
    """One open socket: a person's presence is the best status over their live connections."""

    __tablename__ = "presence_connections"

    id: UUID = Field(primary_key=True)
    person_id: UUID = Field(index=True)
    status: str = Field(max_length=16)  # online | away
    last_seen: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
