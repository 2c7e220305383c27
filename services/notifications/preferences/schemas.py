from datetime import time
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.notifications.preferences.models import TIME_ZONE_MAX

Digest = Literal["off", "daily", "weekly"]
MuteTarget = Literal["group", "post", "conversation", "person"]


class ChannelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_app: bool
    push: bool
    email: bool


class SettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # A PATCH: only the fields sent change. A zone and a digest frequency always have a value (null is
    # refused), while null quiet hours clear them.
    time_zone: str = Field(default="UTC", min_length=1, max_length=TIME_ZONE_MAX)
    quiet_start: time | None = None
    quiet_end: time | None = None
    digest: Digest = "off"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone (use an IANA name such as Europe/Paris)")
        return value

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end are set together")
        return self


class PreferencesPublic(BaseModel):
    kinds: dict[str, ChannelsIn]
    time_zone: str
    quiet_start: time | None
    quiet_end: time | None
    digest: Digest


class MutePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    target_type: MuteTarget
    target_id: UUID
