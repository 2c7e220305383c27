"""Every table of the service, imported in one place for Alembic."""

from services.notifications.inbox.models import Notification

__all__ = ["Notification"]
