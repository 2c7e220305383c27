"""Every table of the service, imported in one place for Alembic."""

from services.notifications.audience.models import (CommentReaction, GroupMember, KnownGroup, KnownPost, PostReaction,
                                                    Presence)
from services.notifications.digests.models import DigestRun
from services.notifications.inbox.models import Notification
from services.notifications.preferences.models import Mute, NotificationPreference, PersonSettings
from services.notifications.push.models import Device, PushJob
from services.notifications.webhooks.models import Webhook, WebhookDelivery

__all__ = ["CommentReaction", "Device", "DigestRun", "GroupMember", "KnownGroup", "KnownPost", "Mute", "Notification",
           "NotificationPreference", "PersonSettings", "PostReaction", "Presence", "PushJob", "Webhook",
           "WebhookDelivery"]
