"""Event payloads of the notifications domain (see shared/events/payloads.py for the conventions).

On `notifications.v1`, for analytics (reach of notifications, read rates) and for every notifications
replica's socket fan-out (the recipients' sockets read their new frames from the database).
"""

from typing import Literal
from uuid import UUID

from shared.events.base import EventData


class NotificationsDelivered(EventData):
    """Notifications of one kind from one source event reached these people on a channel.

    A big audience (an announcement to the whole company) is split into events of at most 1,000
    recipients each. A grouped notification updated in place (another reaction) is delivered again."""

    TOPIC = "notifications"
    type: Literal["hearth.notification.delivered"] = "hearth.notification.delivered"
    kind: str
    channel: Literal["in_app", "push", "email"] = "in_app"
    source_event_id: UUID | None = None
    subject_type: str | None = None
    subject_id: UUID | None = None
    recipients: list[UUID]


class NotificationsRead(EventData):
    """A person read notifications: the listed ones, or all of them (`all`, `notification_ids` empty)."""

    TOPIC = "notifications"
    type: Literal["hearth.notification.read"] = "hearth.notification.read"
    person_id: UUID
    notification_ids: list[UUID] = []
    all: bool = False
    count: int


class NotificationsDeleted(EventData):
    """A person deleted notifications from their inbox (their other sockets update the badge)."""

    TOPIC = "notifications"
    type: Literal["hearth.notification.deleted"] = "hearth.notification.deleted"
    person_id: UUID
    notification_ids: list[UUID]
    unread: int  # how many of them were unread
