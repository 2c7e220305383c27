from datetime import datetime
from uuid import UUID

from sqlalchemy import ARRAY, Column, DateTime, Index, String, UniqueConstraint, text
from sqlmodel import Field
from uuid6 import uuid7

from services.notifications.db import Table
from shared.db import utcnow

URL_MAX = 2048


class Webhook(Table, table=True):
    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_owner", "owner_id"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    owner_id: UUID
    url: str = Field(max_length=URL_MAX)
    description: str = Field(default="", max_length=200)
    event_types: list[str] = Field(sa_column=Column(ARRAY(String(64)), nullable=False))
    secret: str = Field(max_length=64)  # needed to sign every delivery; shown to the owner only at creation
    active: bool = True
    consecutive_failures: int = 0
    disabled_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class WebhookDelivery(Table, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),  # an event reaches a webhook once, however often it is consumed
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at", "id"),
    )

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    webhook_id: UUID = Field(foreign_key="webhooks.id", ondelete="CASCADE")
    event_id: UUID
    event_type: str = Field(max_length=64)
    body: str  # the exact JSON that is signed and sent
    status: str = Field(default="pending", max_length=16)  # pending | succeeded | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    delivered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
