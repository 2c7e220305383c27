from services.analytics.config import Settings
from services.analytics.ingest import service
from shared.events import EVENT_TYPES
from shared.kafka import EventConsumer


def event_log_consumer(settings: Settings) -> EventConsumer:
    """Every type of every topic goes to the event log; the rollups read what they need generically."""
    return EventConsumer(
        name="analytics.events", topics=settings.topics,
        handlers={event_type: service.record_event for event_type in EVENT_TYPES},
        max_attempts=settings.consumer_max_attempts)
