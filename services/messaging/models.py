"""Every table of the service, imported in one place for Alembic."""

from services.messaging.attachments.models import Attachment
from services.messaging.conversations.models import Conversation, Member, Preference
from services.messaging.messages.models import Message, MessageEdit, Reaction
from services.messaging.people.models import PersonHandle
from services.messaging.realtime.models import PresenceConnection, frames

__all__ = ["Attachment", "Conversation", "Member", "Message", "MessageEdit", "PersonHandle", "PresenceConnection",
           "Preference", "Reaction", "frames"]
