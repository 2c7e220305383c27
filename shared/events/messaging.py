"""Event payloads of the messaging domain (see shared/events/payloads.py for the conventions)."""

from shared.events.base import EventData  # noqa: F401
