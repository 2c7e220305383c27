from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, DateTime, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.analytics.db import Table


class EventLog(Table, table=True):
    """Every event analytics has seen, as received: the source of truth rollups are rebuilt from."""

    __tablename__ = "event_log"
    __table_args__ = (Index("ix_event_log_type_time", "type", "time"),)

    event_id: UUID = Field(primary_key=True)
    type: str = Field(max_length=100)
    time: datetime = Field(sa_type=DateTime(timezone=True))
    actor_id: UUID | None = Field(default=None, index=True)
    client: str | None = Field(default=None, max_length=80)
    subject: str = Field(max_length=200)
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))


class DailyCount(Table, table=True):
    """Pre-aggregated counters per UTC day, kept in the same transaction as the event log row."""

    __tablename__ = "daily_counts"

    day: date = Field(primary_key=True)
    metric: str = Field(primary_key=True, max_length=64)
    count: int = 0
