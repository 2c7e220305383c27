from services.analytics.config import Settings
from services.analytics.ingest import service
from shared.events import EVENT_TYPES
from shared.kafka import EventConsumer


def event_log_consumer(settings: Settings) -> EventConsumer:
    """Every type of every topic goes to the event log; the rollups read what they need generically."""
    return EventConsumer(
        name="analytics.events", topics=settings.topics,
        handlers={event_type: service.record_event for event_type in EVENT_TYPES},
        # Large fetches, payloads not re-validated: the log keeps every event as it came, and one durable
        # commit per fetch is what bounds the ingest rate.
        batch_handler=ingest_batch, batch_size=2000, typed_payloads=False,
        max_attempts=settings.consumer_max_attempts)


async def ingest_batch(session, items) -> None:
    """A whole fetch in one transaction: one insert into the log and one upsert per rollup table."""
    await service.ingest(session, [envelope for envelope, _ in items])
