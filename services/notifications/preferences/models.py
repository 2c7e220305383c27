from datetime import datetime, time
from uuid import UUID

from sqlalchemy import DateTime, Time
from sqlmodel import Field

from services.notifications.db import Table

TIME_ZONE_MAX = 64


class NotificationPreference(Table, table=True):
    """An override of the defaults for one kind; absent rows mean the defaults (preferences.defaults)."""

    __tablename__ = "notification_preferences"

    person_id: UUID = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=32)
    in_app: bool
    push: bool
    email: bool


class PersonSettings(Table, table=True):
    __tablename__ = "notification_settings"

    person_id: UUID = Field(primary_key=True)
    time_zone: str = Field(default="UTC", max_length=TIME_ZONE_MAX)
    quiet_start: time | None = Field(default=None, sa_type=Time())
    quiet_end: time | None = Field(default=None, sa_type=Time())
    digest: str = Field(default="weekly", max_length=8)  # off | daily | weekly
    last_digest_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Mute(Table, table=True):
    __tablename__ = "notification_mutes"

    person_id: UUID = Field(primary_key=True)
    target_type: str = Field(primary_key=True, max_length=16)  # group | post | conversation | person
    target_id: UUID = Field(primary_key=True)
