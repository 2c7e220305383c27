from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.notifications.webhooks.models import URL_MAX

EventType = str


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=URL_MAX)
    event_types: list[str] = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=200)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool  # re-enable one that was switched off after failures (or pause one)


class WebhookPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    url: str
    description: str
    event_types: list[str]
    active: bool
    consecutive_failures: int
    disabled_reason: str | None
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str  # shown once: store it to verify X-Hearth-Signature


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    event_id: UUID
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
