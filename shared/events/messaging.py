"""Event payloads of the messaging domain (see shared/events/payloads.py for the conventions).

Every payload names `recipients`: the people whose sockets get a frame for it (the members at the time
of the change). Messaging's fan-out reader wakes their sockets on every replica; other services may use
it too (notifications for people who are offline). Typing and presence are ephemeral: published
straight to the topic, never stored, never replayed.
"""

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from shared.events.base import EventData


class MessagingEvent(EventData):
    TOPIC: ClassVar[str] = "messaging"
    recipients: list[UUID] = []


class ConversationCreated(MessagingEvent):
    type: Literal["hearth.conversation.created"] = "hearth.conversation.created"
    conversation_id: UUID
    kind: Literal["direct", "group"]
    title: str | None = None
    creator_id: UUID
    member_ids: list[UUID]


class ConversationUpdated(MessagingEvent):
    type: Literal["hearth.conversation.updated"] = "hearth.conversation.updated"
    conversation_id: UUID
    title: str | None = None


class ConversationMemberAdded(MessagingEvent):
    type: Literal["hearth.conversation.member_added"] = "hearth.conversation.member_added"
    conversation_id: UUID
    person_id: UUID
    role: Literal["admin", "member"]


class ConversationMemberRemoved(MessagingEvent):
    """Removed by an admin, or left (`left`); the person's open sockets lose the conversation at once."""

    type: Literal["hearth.conversation.member_removed"] = "hearth.conversation.member_removed"
    conversation_id: UUID
    person_id: UUID
    left: bool = False


class ConversationMemberRoleChanged(MessagingEvent):
    type: Literal["hearth.conversation.member_role_changed"] = "hearth.conversation.member_role_changed"
    conversation_id: UUID
    person_id: UUID
    role: Literal["admin", "member"]


class MessageSent(MessagingEvent):
    type: Literal["hearth.message.sent"] = "hearth.message.sent"
    message_id: UUID
    conversation_id: UUID
    sender_id: UUID
    reply_to_id: UUID | None = None
    excerpt: str  # first characters of the text, for notifications and previews
    mentions: list[UUID] = []  # conversation members @mentioned in the text
    created_at: datetime


class MessageEdited(MessagingEvent):
    type: Literal["hearth.message.edited"] = "hearth.message.edited"
    message_id: UUID
    conversation_id: UUID
    editor_id: UUID
    edited_at: datetime


class MessageDeleted(MessagingEvent):
    type: Literal["hearth.message.deleted"] = "hearth.message.deleted"
    message_id: UUID
    conversation_id: UUID
    deleted_by: UUID


class MessageReactionAdded(MessagingEvent):
    type: Literal["hearth.message.reaction_added"] = "hearth.message.reaction_added"
    message_id: UUID
    conversation_id: UUID
    person_id: UUID
    emoji: str


class MessageReactionRemoved(MessagingEvent):
    type: Literal["hearth.message.reaction_removed"] = "hearth.message.reaction_removed"
    message_id: UUID
    conversation_id: UUID
    person_id: UUID
    emoji: str


class ConversationRead(MessagingEvent):
    """A member's read marker moved; `recipients` are who may see it as a receipt (may be only the reader)."""

    type: Literal["hearth.conversation.read"] = "hearth.conversation.read"
    conversation_id: UUID
    person_id: UUID
    last_read_message_id: UUID


class TypingChanged(MessagingEvent):
    """Ephemeral: never stored, published straight to the topic by the replica holding the socket."""

    type: Literal["hearth.conversation.typing"] = "hearth.conversation.typing"
    conversation_id: UUID
    person_id: UUID
    typing: bool


class PresenceChanged(MessagingEvent):
    """A person's presence across all their devices changed (online > away > offline)."""

    type: Literal["hearth.presence.changed"] = "hearth.presence.changed"
    person_id: UUID
    status: Literal["online", "away", "offline"]
