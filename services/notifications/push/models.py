from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, DateTime, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field
from uuid6 import uuid7

from services.notifications.db import Table
from shared.db import utcnow

TOKEN_MAX = 2048


class Device(Table, table=True):
    __tablename__ = "push_devices"
    __table_args__ = (UniqueConstraint("platform", "token"), Index("ix_push_devices_person", "person_id"))

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    person_id: UUID
    platform: str = Field(max_length=16)  # ios | android | web
    token: str = Field(max_length=TOKEN_MAX)  # APNs device token, FCM registration token, Web Push endpoint URL
    p256dh: str | None = Field(default=None, max_length=200)  # Web Push subscription keys
    auth: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PushJob(Table, table=True):
    __tablename__ = "push_jobs"
    __table_args__ = (
        UniqueConstraint("device_id", "dedupe_key"),  # a replayed event never pushes twice to one device
        Index("ix_push_jobs_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    device_id: UUID = Field(foreign_key="push_devices.id", ondelete="CASCADE")
    person_id: UUID
    dedupe_key: str = Field(max_length=100)
    title: str = Field(max_length=200)
    body: str = Field(max_length=300)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
