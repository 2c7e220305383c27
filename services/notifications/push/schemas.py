from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.notifications.push.models import TOKEN_MAX

Platform = Literal["ios", "android", "web"]


class WebPushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class DeviceCreate(BaseModel):
    """ios: the APNs device token; android: the FCM registration token; web: the PushSubscription (endpoint + keys)."""

    model_config = ConfigDict(extra="forbid")
    platform: Platform
    token: str = Field(min_length=1, max_length=TOKEN_MAX)
    keys: WebPushKeys | None = None

    @model_validator(mode="after")
    def _web_needs_keys(self):
        if (self.platform == "web") != (self.keys is not None):
            raise ValueError("web devices (and only they) carry the subscription keys p256dh and auth")
        return self


class DevicePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: UUID
    platform: Platform
    created_at: datetime
