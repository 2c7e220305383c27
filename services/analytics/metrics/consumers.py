from services.analytics.config import Settings
from services.analytics.metrics import service
from shared.events import EVENT_TYPES
from shared.kafka import EventConsumer


def event_log_consumer(settings: Settings) -> EventConsumer:
    return EventConsumer(
        name="analytics.events",
        topics=[settings.topic_people, settings.topic_social, settings.topic_activity, settings.topic_messaging],
        handlers={event_type: service.record_event for event_type in EVENT_TYPES},
        max_attempts=settings.consumer_max_attempts)
