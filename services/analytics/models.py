"""Every table of the service, imported in one place for Alembic."""

from services.analytics.metrics.models import DailyCount, EventLog

__all__ = ["DailyCount", "EventLog"]
