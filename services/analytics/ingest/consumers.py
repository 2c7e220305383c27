from services.analytics.config import Settings
from services.analytics.ingest import service
from shared.directory import PERSON_SNAPSHOT_EVENTS, people_consumer
from shared.events import EVENT_TYPES, RawEnvelope
from shared.kafka import EventConsumer, Handler


def event_log_consumer(settings: Settings) -> EventConsumer:
    """Every type of every topic goes to the event log; the rollups read what they need generically."""
    return EventConsumer(
        name="analytics.events", topics=settings.topics,
        handlers={event_type: service.record_event for event_type in EVENT_TYPES},
        # Large fetches, payloads not re-validated: the log keeps every event as it came, and one durable
        # commit per fetch is what bounds the ingest rate. The envelope is decoded with its payload left as
        # JSON (what the log stores); the rollups decode only the few payload fields they read (classify.Facts).
        batch_handler=ingest_batch, batch_size=2000, typed_payloads=False, decode=RawEnvelope.from_bytes,
        max_attempts=settings.consumer_max_attempts)


async def ingest_batch(session, items) -> None:
    """A whole fetch in one transaction: one insert into the log and one upsert per rollup table."""
    await service.ingest(session, [envelope for envelope, _ in items])


def directory_consumer(settings: Settings) -> EventConsumer:
    """shared.directory's people read model, whose person changes also bump the rollups' version: members
    are people at the end of a window, so no cached metrics answer may outlive a person's change, whichever
    of the two consumers of people.v1 applies it first."""
    consumer = people_consumer(settings)
    consumer.handlers = {event_type: bumping(handler) if event_type in PERSON_SNAPSHOT_EVENTS else handler
                         for event_type, handler in consumer.handlers.items()}
    return consumer


def bumping(handler: Handler) -> Handler:
    async def handle(session, envelope, payload) -> None:
        await handler(session, envelope, payload)
        await service.bump_version(session)

    return handle
