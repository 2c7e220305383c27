from services.notifications.config import Settings
from services.notifications.webhooks import service
from shared.events import EVENT_TYPES
from shared.kafka import EventConsumer


def webhook_consumer(settings: Settings) -> EventConsumer:
    """Every event integrators may subscribe to becomes pending deliveries (sent by the supervised worker)."""
    topics = {"social": settings.topic_social, "people": settings.topic_people,
              "messaging": settings.topic_messaging, "notifications": settings.topic_notifications}
    handlers = {t: service.enqueue for t, model in EVENT_TYPES.items() if model.TOPIC in service.TOPIC_SCOPES}
    return EventConsumer(name="notifications.webhooks", topics=list(topics.values()), handlers=handlers,
                         max_attempts=settings.consumer_max_attempts)
