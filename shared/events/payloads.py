"""Typed event payloads: the contract between services and with integrators.

Each payload names its `type` as a Literal and the logical topic it travels on; `EVENT_TYPES` is
built from them and drives decoding and the generated catalogue (docs/events.asyncapi.json).
Changing a field incompatibly means a new version (`VERSION`) or a new type.
"""

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class EventData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    TOPIC: ClassVar[str]  # logical topic: people | social | activity | messaging | notifications
    VERSION: ClassVar[int] = 1
    type: str


class PersonSnapshot(BaseModel):
    """The directory entry other services keep a read model of (no secrets, no password data)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    email: str
    display_name: str
    title: str | None = None
    department: str | None = None
    location: str | None = None
    manager_id: UUID | None = None
    hire_date: date | None = None
    leader: bool = False
    official: bool = False
    protected: bool = False
    active: bool = True
    roles: list[str] = []
    updated_at: datetime


class PersonCreated(EventData):
    TOPIC = "people"
    type: Literal["hearth.person.created"] = "hearth.person.created"
    person: PersonSnapshot


class PersonUpdated(EventData):
    """Carries the whole snapshot, so a consumer can upsert without knowing what changed."""

    TOPIC = "people"
    type: Literal["hearth.person.updated"] = "hearth.person.updated"
    person: PersonSnapshot
    changed: list[str] = []


class PostCreated(EventData):
    TOPIC = "social"
    type: Literal["hearth.post.created"] = "hearth.post.created"
    post_id: UUID
    author_id: UUID
    kind: str
    audience: Literal["company", "followers", "group"]
    group_id: UUID | None = None
    excerpt: str  # first characters of the plain text, for notifications and previews
    mentions: list[UUID] = []
    hashtags: list[str] = []
    created_at: datetime


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.model_fields["type"].default: cls for cls in (PersonCreated, PersonUpdated, PostCreated)
}
