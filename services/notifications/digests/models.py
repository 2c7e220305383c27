from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime
from sqlmodel import Field

from services.notifications.db import Table
from shared.db import utcnow


class DigestRun(Table, table=True):
    """One digest per person and period ("2026-11-25", "2026-W48"): a rerun of the job sends nothing twice."""

    __tablename__ = "digest_runs"

    person_id: UUID = Field(primary_key=True)
    period: str = Field(primary_key=True, max_length=16)
    status: str = Field(default="sending", max_length=16)  # sending | sent | empty
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
