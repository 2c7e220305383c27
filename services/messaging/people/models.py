from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime
from sqlmodel import Field

from services.messaging.db import Table

HANDLE_MAX = 64  # posts' people.handle


class PersonHandle(Table, table=True):
    """A person's @handle, from the people events (the shared directory read model does not keep it)."""

    __tablename__ = "person_handles"

    person_id: UUID = Field(primary_key=True)
    handle: str = Field(max_length=HANDLE_MAX, index=True)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))  # of the snapshot it came from
