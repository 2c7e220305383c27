"""Event payloads of the activity domain (see shared/events/payloads.py for the conventions)."""

from shared.events.base import EventData  # noqa: F401
