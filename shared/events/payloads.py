"""Typed event payloads: the contract between services and with integrators.

Each payload names its `type` as a Literal and the logical topic it travels on; defining the class
registers it in `EVENT_TYPES` (shared/events/base.py), which drives decoding and the generated
catalogue (docs/events.asyncapi.json). People, graph and groups live here; other domains have a
module of their own in this package (content, activity, messaging, notifications).
Changing a field incompatibly means a new version (`VERSION`) or a new type.
"""

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.events.base import EVENT_TYPES, EventData  # noqa: F401  (re-exported)


class PersonSnapshot(BaseModel):
    """The directory entry other services keep a read model of (no secrets, no password data)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    email: str
    display_name: str
    handle: str | None = None  # what @mentions use (None in events from before it was carried)
    title: str | None = None
    department: str | None = None
    location: str | None = None
    country: str | None = None
    time_zone: str | None = None
    manager_id: UUID | None = None
    hire_date: date | None = None
    skills: list[str] = []
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
    must_read: bool = False  # an announcement everyone in its audience is asked to acknowledge
    created_at: datetime


class PersonDeactivated(EventData):
    """Deactivated (SCIM `active: false` or delete): sign-in has stopped; other services hide the person."""

    TOPIC = "people"
    type: Literal["hearth.person.deactivated"] = "hearth.person.deactivated"
    person: PersonSnapshot


class PersonReactivated(EventData):
    TOPIC = "people"
    type: Literal["hearth.person.reactivated"] = "hearth.person.reactivated"
    person: PersonSnapshot


class ApiTokenRevoked(EventData):
    """An integrator token was revoked; every service must refuse it from now on."""

    TOPIC = "people"
    type: Literal["hearth.api_token.revoked"] = "hearth.api_token.revoked"
    token_id: UUID
    person_id: UUID


class SessionRevoked(EventData):
    """Sign-ins ended (logout, refresh-token reuse, new password, deactivation): every service refuses
    access tokens carrying one of these `sid`s from now on, though their signatures still verify."""

    TOPIC = "people"
    type: Literal["hearth.session.revoked"] = "hearth.session.revoked"
    person_id: UUID
    session_ids: list[UUID]


class FollowCreated(EventData):
    """`follower_id` now follows `followee_id` (directly, or by an approved request)."""

    TOPIC = "social"
    type: Literal["hearth.follow.created"] = "hearth.follow.created"
    follower_id: UUID
    followee_id: UUID
    via_request: bool = False
    # A repeat within a day of an earlier follow by the same follower (follow, unfollow, follow…):
    # the follow holds, but nobody should be notified of it again.
    quiet: bool = False


class FollowRemoved(EventData):
    TOPIC = "social"
    type: Literal["hearth.follow.removed"] = "hearth.follow.removed"
    follower_id: UUID
    followee_id: UUID
    reason: Literal["unfollowed", "removed_by_followee", "deactivated"] = "unfollowed"


class FollowRequested(EventData):
    """A follow request to a protected account, waiting for its owner."""

    TOPIC = "social"
    type: Literal["hearth.follow.requested"] = "hearth.follow.requested"
    request_id: UUID
    follower_id: UUID
    followee_id: UUID


class FollowRequestClosed(EventData):
    """A pending request ended without a follow (denied, or cancelled by its sender)."""

    TOPIC = "social"
    type: Literal["hearth.follow_request.closed"] = "hearth.follow_request.closed"
    request_id: UUID
    follower_id: UUID
    followee_id: UUID
    outcome: Literal["denied", "cancelled"]


class GroupSnapshot(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    name: str
    description: str = ""
    visibility: Literal["public", "private", "secret"]
    official: bool = False
    all_company: bool = False
    admins_only_posting: bool = False
    archived: bool = False
    updated_at: datetime


class GroupCreated(EventData):
    TOPIC = "social"
    type: Literal["hearth.group.created"] = "hearth.group.created"
    group: GroupSnapshot


class GroupUpdated(EventData):
    """Settings changed (name, visibility, posting, archived): carries the whole snapshot."""

    TOPIC = "social"
    type: Literal["hearth.group.updated"] = "hearth.group.updated"
    group: GroupSnapshot
    changed: list[str] = []


class GroupMemberAdded(EventData):
    TOPIC = "social"
    type: Literal["hearth.group.member_added"] = "hearth.group.member_added"
    group_id: UUID
    person_id: UUID
    role: Literal["owner", "admin", "member"]
    via: Literal["created", "joined", "invite", "request_approved", "added", "provisioned"]


class GroupMemberRemoved(EventData):
    TOPIC = "social"
    type: Literal["hearth.group.member_removed"] = "hearth.group.member_removed"
    group_id: UUID
    person_id: UUID
    reason: Literal["left", "removed", "deactivated", "deprovisioned"]


class GroupMemberRoleChanged(EventData):
    TOPIC = "social"
    type: Literal["hearth.group.member_role_changed"] = "hearth.group.member_role_changed"
    group_id: UUID
    person_id: UUID
    role: Literal["owner", "admin", "member"]


class GroupJoinRequested(EventData):
    """Someone asked to join a private group; its admins decide."""

    TOPIC = "social"
    type: Literal["hearth.group.join_requested"] = "hearth.group.join_requested"
    request_id: UUID
    group_id: UUID
    person_id: UUID


class GroupInvited(EventData):
    TOPIC = "social"
    type: Literal["hearth.group.invited"] = "hearth.group.invited"
    invite_id: UUID
    group_id: UUID
    person_id: UUID
    inviter_id: UUID
