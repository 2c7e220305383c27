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
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, TopicAlreadyExistsError
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import HearthSettings
from shared.events import EVENT_TYPES, Envelope, EventData, UnknownEventType
from shared.faults import is_transient
from shared.outbox import processed_events_table

log = structlog.get_logger("hearth.kafka")

Handler = Callable[[AsyncSession, Envelope, EventData], Awaitable[None]]
# Applies many events in one transaction (analytics ingest): only events not applied before reach it.
BatchHandler = Callable[[AsyncSession, list[tuple[Envelope, EventData]]], Awaitable[None]]
DLQ_SUFFIX = ".dlq"


def topic_map(settings: HearthSettings) -> dict[str, str]:
    """Logical topic (as written in the outbox) -> configured topic name."""
    return {"people": settings.topic_people, "social": settings.topic_social, "activity": settings.topic_activity,
            "messaging": settings.topic_messaging, "notifications": settings.topic_notifications}


def make_producer(settings: HearthSettings, **overrides) -> AIOKafkaProducer:
    # No linger: the relay hands a whole batch over in one go (aiokafka's send does not suspend while the
    # topic's metadata is known and the partition's batch has room), so waiting for more only delayed
    # every batch by the linger; and aiokafka sends one request per broker at a time, so rows that come
    # while one is in flight are batched behind it anyway.
    options = dict(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                   enable_idempotence=settings.kafka_idempotence, request_timeout_ms=5000, linger_ms=0)
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
    # Offsets are committed after every processed batch, so nothing is pending at a revoke; the
    # listener makes rebalances visible in the logs.
    def __init__(self, name: str):
        self.name = name

    async def on_partitions_revoked(self, revoked):
        log.info("partitions revoked", consumer=self.name, partitions=[f"{tp.topic}:{tp.partition}" for tp in revoked])

    async def on_partitions_assigned(self, assigned):
        log.info("partitions assigned", consumer=self.name, partitions=[f"{tp.topic}:{tp.partition}" for tp in assigned])


class Stopped(Exception):
    """The service is stopping while a record is unfinished: leave its offset uncommitted."""


_DEDUPE_BATCH = text(
    "INSERT INTO processed_events (consumer, event_id) SELECT :consumer, unnest(CAST(:ids AS uuid[])) "
    "ON CONFLICT DO NOTHING RETURNING event_id")


@dataclass
class EventConsumer:
    """A named consumer group: which topics it reads and one handler per event type it cares about.

    The loop survives everything but a stop. Infrastructure faults (see shared.faults) are waited out
    with capped backoff and never count toward dead-lettering; only a handler's own failures do. A
    failed offset commit (a rebalance) is logged and the records come back, absorbed by dedupe. A
    dead-letter send that fails is retried until it succeeds; a record is never dropped.
    """

    name: str  # also the consumer group id and the dedupe namespace
    topics: list[str]
    handlers: dict[str, Handler]
    batch_handler: BatchHandler | None = None
    batch_size: int = 500  # records per fetch: a batch handler shares one commit across them
    # A batch handler that reads only the envelope (analytics logs every event generically) may skip
    # validating each payload against its typed model; its items then carry None as the payload.
    typed_payloads: bool = True
    # Without typed payloads, a faster decoder may replace `Envelope.from_bytes` in batch mode (analytics:
    # `RawEnvelope.from_bytes`, the payload left as JSON). It must give objects with the envelope's
    # attributes and raise ValueError for any record it does not read exactly as `Envelope` would: the
    # batch then takes the careful path, record by record with `Envelope`.
    decode: Callable[[bytes], object] | None = None
    # The broker's fetch wait for this consumer when it differs from HEARTH_KAFKA_FETCH_MAX_WAIT_MS (None).
    fetch_max_wait_ms: int | None = None
    max_attempts: int = 5
    retry_base_seconds: float = 0.1
    max_backoff_seconds: float = 5.0
    received: int = field(default=0, init=False)
    processed: int = field(default=0, init=False)
    retried: int = field(default=0, init=False)
    dead_lettered: int = field(default=0, init=False)
    commit_failures: int = field(default=0, init=False)
    unknown_types: dict[str, int] = field(default_factory=dict, init=False)
    lag: int = field(default=0, init=False)
    _committed: dict = field(default_factory=dict, init=False, repr=False)

    async def run(self, *, settings: HearthSettings, sessionmaker: async_sessionmaker, stop: asyncio.Event,
                  consumer_options: dict | None = None) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=self.name, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
            max_poll_records=self.batch_size,
            fetch_max_wait_ms=self.fetch_max_wait_ms or settings.kafka_fetch_max_wait_ms, **(consumer_options or {}))
        dlq = make_producer(settings)
        try:
            await _start_with_retry(consumer, dlq, stop=stop, name=self.name)
            if stop.is_set():
                return
            consumer.subscribe(self.topics, listener=_LogRebalance(self.name))
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    done = await self._handle_batch(records, sessionmaker=sessionmaker, dlq=dlq, stop=stop)
                    if done is not None:
                        await self._commit(consumer, tp, done.offset + 1)
                self._measure_lag(consumer)
        finally:
            await _stop_quietly(consumer)
            await _stop_quietly(dlq)

    async def _handle_batch(self, records, *, sessionmaker, dlq, stop):
        """Apply records in order; the last one finished, or None when none was."""
        if self.batch_handler is not None and len(records) > 1:
            try:
                if await self._apply_batch(records, sessionmaker):
                    return records[-1]
            except Exception as exc:  # one transaction for all failed: isolate the culprit record by record
                log.info("batch failed; applying its records one by one", consumer=self.name, error=repr(exc))
        done = None
        for record in records:
            try:
                await self.handle_record(record, sessionmaker=sessionmaker, dlq=dlq, stop=stop)
            except Stopped:
                break
            done = record
        return done

    async def _apply_batch(self, records, sessionmaker: async_sessionmaker) -> bool:
        """Dedupe rows and effect of a whole fetch in one transaction; False (nothing done) when a record
        needs the careful path (undecodable, or a type some records have no handler for)."""
        items = []
        decode = self.decode if self.decode is not None and not self.typed_payloads else Envelope.from_bytes
        for record in records:
            try:
                envelope = decode(record.value)
                if envelope.type not in self.handlers:
                    return False
                items.append((envelope, envelope.payload() if self.typed_payloads else None))
            except (ValidationError, UnknownEventType, ValueError):
                return False
        items = list({envelope.id: (envelope, payload) for envelope, payload in items}.values())
        async with sessionmaker() as session, session.begin():
            # One array parameter, not a statement with a VALUES row per record (that one is compiled anew
            # for every batch size and costs more than the insert itself).
            fresh = set(await session.scalars(_DEDUPE_BATCH, {"consumer": self.name, "ids": [e.id for e, _ in items]}))
            new = [(e, p) for e, p in items if e.id in fresh]
            if new:
                await self.batch_handler(session, new)
        self.received += len(records)
        self.processed += len(new)
        return True

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
            self._committed[tp] = offset
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # The group moved on (rebalance, broker restart): these records will come back to whoever
            # owns the partition now, and the processed-events rows turn them into no-ops.
            self.commit_failures += 1
            log.warning("offset commit failed; records will be redelivered and deduplicated",
                        consumer=self.name, partition=f"{tp.topic}:{tp.partition}", error=repr(exc))

    def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Lag = end offset (from the last fetch, no round trip) minus what this consumer committed."""
        lag = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                lag += max(0, high - self._committed.get(tp, 0))
        self.lag = lag

    async def handle_record(self, record, *, sessionmaker: async_sessionmaker, dlq: AIOKafkaProducer,
                            stop: asyncio.Event | None = None) -> None:
        """Apply one record: decode, dedupe, handle with retries, dead-letter when it keeps failing."""
        stop = stop or asyncio.Event()
        self.received += 1
        try:
            envelope = Envelope.from_bytes(record.value)
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(dlq, record, f"undecodable: {exc}", attempts=0, stop=stop)
            return
        handler = self.handlers.get(envelope.type)
        if handler is None:
            self._note_unhandled(envelope.type)
            return
        try:
            payload = envelope.payload()
        except (ValidationError, UnknownEventType, ValueError) as exc:
            await self._dead_letter(dlq, record, f"undecodable: {exc}", attempts=0, stop=stop)
            return
        # Everything logged while applying the event (handlers included) carries its id.
        with structlog.contextvars.bound_contextvars(event_id=str(envelope.id), event_type=envelope.type,
                                                     consumer=self.name):
            await self._apply_with_retries(record, envelope, payload, handler, sessionmaker, dlq, stop)

    def _note_unhandled(self, event_type: str) -> None:
        """Types this consumer has no handler for are counted; a type this code does not know at all
        (a newer producer) is logged once, so an upgrade that forgot a consumer is visible."""
        first = event_type not in self.unknown_types
        self.unknown_types[event_type] = self.unknown_types.get(event_type, 0) + 1
        if first and event_type not in EVENT_TYPES:
            log.warning("event type unknown to this version; skipped", consumer=self.name, event_type=event_type)

    async def _apply_with_retries(self, record, envelope, payload, handler, sessionmaker, dlq, stop) -> None:
        attempts, waits = 0, 0
        while True:
            try:
                if await self.apply(sessionmaker, envelope, payload, handler):
                    self.processed += 1
                return
            except Exception as exc:
                # The database being unreachable makes any handler fail: check before blaming the event.
                if is_transient(exc) or not await _database_reachable(sessionmaker):
                    waits += 1
                    self.retried += 1
                    log.warning("infrastructure fault; waiting it out", error=repr(exc), waits=waits)
                    await self._pause(stop, waits)
                    continue
                attempts += 1
                self.retried += 1
                log.warning("event handler failed", attempt=attempts, error=repr(exc))
                if attempts >= self.max_attempts:
                    await self._dead_letter(dlq, record, repr(exc), attempts=attempts, stop=stop)
                    return
                await self._pause(stop, attempts)

    async def _pause(self, stop: asyncio.Event, attempt: int) -> None:
        delay = min(self.retry_base_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)
        if await sleep_or_stop(stop, delay):
            raise Stopped()

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

    async def _dead_letter(self, dlq: AIOKafkaProducer, record, error: str, *, attempts: int,
                           stop: asyncio.Event) -> None:
        headers = [("hearth-error", error[:1000].encode()), ("hearth-consumer", self.name.encode()),
                   ("hearth-attempts", str(attempts).encode()),
                   ("hearth-origin", f"{record.topic}:{record.partition}:{record.offset}".encode())]
        tries = 0
        while True:
            try:
                await dlq.send_and_wait(record.topic + DLQ_SUFFIX, value=record.value, key=record.key,
                                        headers=headers)
                break
            except Exception as exc:  # the broker is the fault here, never the record: keep trying
                tries += 1
                log.warning("dead-letter send failed; retrying", error=repr(exc), tries=tries)
                await self._pause(stop, tries)
        self.dead_lettered += 1
        log.error("event dead-lettered", consumer=self.name, topic=record.topic, offset=record.offset, error=error)

    def metrics(self) -> dict[str, float]:
        return {"received": self.received, "processed": self.processed, "retried": self.retried,
                "dead_lettered": self.dead_lettered, "commit_failures": self.commit_failures,
                "unhandled": sum(self.unknown_types.values()), "lag": self.lag}


async def _database_reachable(sessionmaker: async_sessionmaker) -> bool:
    try:
        async with sessionmaker() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=2)
        return True
    except Exception:
        return False


async def _stop_quietly(client) -> None:
    try:
        await client.stop()
    except Exception as exc:  # a client that never connected may fail to stop; nothing to flush
        log.debug("kafka client stop failed", error=repr(exc))


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, returning early (True) when asked to stop."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
        return True
    except TimeoutError:
        return False


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
                await sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)
