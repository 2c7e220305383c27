"""The fan-out reader every replica runs: each record of a topic reaches every replica (DESIGN §2, §3).

A consumer group would split the partitions between replicas, so a replica would miss the events of
people connected to it. Instead each replica reads ALL partitions by manual assignment, without a
group and without committing offsets, starting at the end: a replica only cares about what happens
while it is up (what a socket missed before is replayed from the database, see shared/realtime.py).

Tansu answers ListOffsets LATEST wrongly (``seek_to_end`` replays the tail of the last batch), so
records whose timestamp is older than the reader's start are dropped; on Apache Kafka the filter is a
no-op. Delivery must be idempotent anyway (here it only wakes sockets that read from the database).

Usage (in the service's lifespan, next to the hub)::

    async def deliver(envelope: Envelope) -> None:
        hub.wake(envelope.data.get("recipients", []))

    reader = FanoutReader(name="messaging.fanout", topics=[settings.topic_messaging], deliver=deliver,
                          settings=settings, on_start=lambda: hub.wake(hub.connections))
    app.state.supervisor.add(reader.name, reader.run, kind="fanout", source=reader)  # restarts with backoff

``on_start`` runs after every (re)start once the partitions are assigned: records produced while the
reader was down were skipped, so the caller wakes every local socket to catch up from its database.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.config import HearthSettings
from shared.events import Envelope

log = structlog.get_logger("hearth.fanout")

Deliver = Callable[[Envelope], Awaitable[None]]


class FanoutReader:
    """Reads every partition of `topics` from the end (no group, no commits) and hands records to `deliver`."""

    def __init__(self, *, name: str, topics: list[str], deliver: Deliver, settings: HearthSettings,
                 on_start: Callable[[], object] | None = None):
        self.name, self.topics, self.deliver, self.settings = name, topics, deliver, settings
        self.on_start = on_start
        self.running = False  # assigned and reading
        self.delivered = 0
        self.skipped = 0
        self.started_ms = 0  # records older than this (ms) are history, not news

    def metrics(self) -> dict[str, float]:
        """What /metrics shows of the reader (shared.supervisor.SupervisorCollector reads it)."""
        return {"delivered": self.delivered, "skipped": self.skipped}

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop` is set; any error ends the run (the supervisor logs it and restarts with backoff)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="latest",
                                    fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms, max_poll_records=500)
        await consumer.start()
        try:
            start_ms = self.started_ms = int(time.time() * 1000)
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            self.running = True
            log.info("fan-out reader started", reader=self.name, partitions=len(partitions))
            if self.on_start is not None:
                self.on_start()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        await self._handle(record, start_ms)
        finally:
            self.running = False
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        await consumer.topics()  # refresh metadata for every topic
        partitions = []
        for topic in self.topics:
            numbers = consumer.partitions_for_topic(topic)
            if not numbers:
                raise RuntimeError(f"topic {topic} has no partitions yet")
            partitions += [TopicPartition(topic, p) for p in sorted(numbers)]
        return partitions

    async def _handle(self, record, start_ms: int) -> None:
        if record.timestamp is not None and record.timestamp < start_ms:
            self.skipped += 1  # Tansu's seek_to_end replays the tail of the last batch
            return
        try:
            envelope = Envelope.from_bytes(record.value)
        except ValueError:
            return  # not ours to judge; the topic's consumers dead-letter it
        try:
            await self.deliver(envelope)
            self.delivered += 1
        except Exception as exc:  # one bad delivery must not stop the others
            log.warning("fan-out delivery failed", reader=self.name, event_id=str(envelope.id), error=repr(exc))
