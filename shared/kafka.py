"""Kafka plumbing: producer settings, topic creation and the one consumer loop every service uses.

Delivery is at-least-once. A consumer's effect and its `processed_events` row commit in one
database transaction, and the partition offset is committed only after that, so a crash between
the two replays the event and the dedupe row turns the replay into a no-op.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import HearthSettings
from shared.events import Envelope, EventData, UnknownEventType
from shared.outbox import processed_events_table

log = structlog.get_logger("hearth.kafka")

Handler = Callable[[AsyncSession, Envelope, EventData], Awaitable[None]]
DLQ_SUFFIX = ".dlq"


def topic_map(settings: HearthSettings) -> dict[str, str]:
    """Logical topic (as written in the outbox) -> configured topic name."""
    return {"people": settings.topic_people, "social": settings.topic_social, "activity": settings.topic_activity,
            "messaging": settings.topic_messaging, "notifications": settings.topic_notifications}


def make_producer(settings: HearthSettings, **overrides) -> AIOKafkaProducer:
    options = dict(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                   enable_idempotence=settings.kafka_idempotence, request_timeout_ms=5000, linger_ms=1)
    return AIOKafkaProducer(**(options | overrides))


async def ensure_topics(bootstrap: str, topics: list[str], *, partitions: int = 4) -> None:
    """Create topics (and their dead-letter topics) explicitly instead of relying on auto-creation."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = topics + [t + DLQ_SUFFIX for t in topics if not t.endswith(DLQ_SUFFIX)]
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


class _LogRebalance(ConsumerRebalanceListener):
    # Offsets are committed synchronously after every processed batch, so nothing is pending at a
    # revoke; the listener is here to make rebalances visible in the logs.
    def __init__(self, name: str):
        self.name = name

    async def on_partitions_revoked(self, revoked):
        log.info("partitions revoked", consumer=self.name, partitions=[f"{tp.topic}:{tp.partition}" for tp in revoked])

    async def on_partitions_assigned(self, assigned):
        log.info("partitions assigned", consumer=self.name, partitions=[f"{tp.topic}:{tp.partition}" for tp in assigned])


@dataclass
class EventConsumer:
    """A named consumer group: which topics it reads and one handler per event type it cares about."""

    name: str  # also the consumer group id and the dedupe namespace
    topics: list[str]
    handlers: dict[str, Handler]
    max_attempts: int = 5
    retry_base_seconds: float = 0.1
    received: int = field(default=0, init=False)
    processed: int = field(default=0, init=False)
    dead_lettered: int = field(default=0, init=False)

    async def run(self, *, settings: HearthSettings, sessionmaker: async_sessionmaker, stop: asyncio.Event,
                  consumer_options: dict | None = None) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=self.name, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
            max_poll_records=500, fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms, **(consumer_options or {}))
        dlq = make_producer(settings)
        await _start_with_retry(consumer, dlq, stop=stop, name=self.name)
        if stop.is_set():
            return
        consumer.subscribe(self.topics, listener=_LogRebalance(self.name))
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    for record in records:
                        await self.handle_record(record, sessionmaker=sessionmaker, dlq=dlq)
                    await consumer.commit({tp: records[-1].offset + 1})
        finally:
            await consumer.stop()
            await dlq.stop()

    async def handle_record(self, record, *, sessionmaker: async_sessionmaker, dlq: AIOKafkaProducer) -> None:
        """Apply one record: decode, dedupe, handle with retries, dead-letter when it keeps failing."""
        self.received += 1
        try:
            envelope = Envelope.from_bytes(record.value)
            handler = self.handlers.get(envelope.type)
            if handler is None:
                return  # not an event this consumer cares about
            payload = envelope.payload()
        except (ValidationError, UnknownEventType, ValueError) as exc:
            await self._dead_letter(dlq, record, f"undecodable: {exc}", attempts=0)
            return
        # Everything logged while applying the event (handlers included) carries its id.
        with structlog.contextvars.bound_contextvars(event_id=str(envelope.id), event_type=envelope.type,
                                                     consumer=self.name):
            await self._apply_with_retries(record, envelope, payload, handler, sessionmaker, dlq)

    async def _apply_with_retries(self, record, envelope, payload, handler, sessionmaker, dlq) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                if await self.apply(sessionmaker, envelope, payload, handler):
                    self.processed += 1
                return
            except Exception as exc:
                log.warning("event handler failed", attempt=attempt, error=repr(exc))
                if attempt == self.max_attempts:
                    await self._dead_letter(dlq, record, repr(exc), attempts=attempt)
                    return
                await asyncio.sleep(self.retry_base_seconds * 2 ** (attempt - 1))

    async def apply(self, sessionmaker: async_sessionmaker, envelope: Envelope, payload: EventData,
                    handler: Handler) -> bool:
        """Run the handler and record the event in one transaction; False when it was already applied."""
        async with sessionmaker() as session, session.begin():
            first_time = await session.scalar(
                pg_insert(processed_events_table).values(consumer=self.name, event_id=envelope.id)
                .on_conflict_do_nothing().returning(processed_events_table.c.event_id))
            if first_time is None:
                return False
            await handler(session, envelope, payload)
        return True

    async def _dead_letter(self, dlq: AIOKafkaProducer, record, error: str, *, attempts: int) -> None:
        headers = [("hearth-error", error[:1000].encode()), ("hearth-consumer", self.name.encode()),
                   ("hearth-attempts", str(attempts).encode()),
                   ("hearth-origin", f"{record.topic}:{record.partition}:{record.offset}".encode())]
        await dlq.send_and_wait(record.topic + DLQ_SUFFIX, value=record.value, key=record.key, headers=headers)
        self.dead_lettered += 1
        log.error("event dead-lettered", consumer=self.name, topic=record.topic, offset=record.offset, error=error)


async def _start_with_retry(*clients, stop: asyncio.Event, name: str) -> None:
    """Wait for the broker instead of crashing the service when it is not up yet."""
    backoff = 0.2
    for client in clients:
        while not stop.is_set():
            try:
                await client.start()
                break
            except Exception as exc:
                log.warning("broker not reachable; retrying", consumer=name, error=repr(exc))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, 5.0)
