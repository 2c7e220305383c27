"""The outbox relay and the consumer loop against a real PostgreSQL and a real Kafka-protocol broker."""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select, text
from uuid6 import uuid7

from shared.events import Envelope
from shared.kafka import DLQ_SUFFIX, EventConsumer, make_producer, topic_map
from shared.outbox import OutboxRelay, add_event, outbox_table
from tests.events import post_created
from tests.shared.conftest import create_topics


async def eventually(predicate, *, timeout: float = 20.0, message: str = "condition"):
    """Wait for an asynchronous effect, bounded; fails the test when it never happens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {message}")


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 20.0):
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    records = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def relay_for(settings, engine, **kwargs) -> OutboxRelay:
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return OutboxRelay(dsn=dsn, service="scratch", producer_factory=lambda: make_producer(settings),
                       topic_map=topic_map(settings), **kwargs)


async def run_until(task_factory, predicate, message):
    stop = asyncio.Event()
    task = asyncio.create_task(task_factory(stop))
    try:
        await eventually(predicate, message=message)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


async def queue_posts(scratch, n: int, *, commit: bool = True, subject=None):
    """Queue n events, each its own aggregate unless `subject` puts them all on one (one key)."""
    events = []
    async with scratch() as session:
        for _ in range(n):
            events.append(await add_event(session, post_created(uuid7()).payload(), subject=subject or uuid7()))
        await (session.commit() if commit else session.rollback())
    return events


async def test_relay_publishes_committed_events_in_order_and_never_rolled_back_ones(scratch, scratch_engine, settings_for):
    settings = settings_for("relay-order")
    await create_topics(settings)
    # One aggregate, so one key and one partition: the topic must hold them in commit order.
    committed = await queue_posts(scratch, 5, subject="aggregate")
    await queue_posts(scratch, 2, commit=False, subject="aggregate")
    relay = relay_for(settings, scratch_engine)
    await run_until(relay.run, lambda: _async(relay.published >= 5), "relay to publish")
    records = await read_topic(settings.kafka_bootstrap, settings.topic_social, 5)
    envelopes = [Envelope.from_bytes(r.value) for r in records]
    assert [e.id for e in envelopes] == [e.id for e in committed]
    assert all(r.key == e.subject.encode() for r, e in zip(records, envelopes))  # key = aggregate id
    async with scratch() as session:
        pending = await session.scalar(select(func.count()).select_from(outbox_table)
                                       .where(outbox_table.c.published_at.is_(None)))
    assert pending == 0 and relay.published == 5


async def test_relay_wakes_on_notify_not_on_its_poll(scratch, scratch_engine, settings_for):
    settings = settings_for("relay-notify")
    await create_topics(settings)
    relay = relay_for(settings, scratch_engine, poll_seconds=60)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(1.0)  # the relay is idle, asleep on LISTEN with a 60 s poll
        await queue_posts(scratch, 1)
        # Only the NOTIFY at commit can wake it within this bound.
        await eventually(lambda: _async(relay.published == 1), timeout=10, message="NOTIFY to wake the relay")
    finally:
        stop.set()
        await task


async def test_only_one_relay_per_database_publishes(scratch, scratch_engine, settings_for):
    settings = settings_for("relay-lock")
    await create_topics(settings)
    relays = [relay_for(settings, scratch_engine), relay_for(settings, scratch_engine)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    try:
        await asyncio.sleep(0.5)
        await queue_posts(scratch, 20)
        await eventually(lambda: _async(sum(r.published for r in relays) >= 20), message="publishing")
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert sorted(r.published for r in relays) == [0, 20]
    records = await read_topic(settings.kafka_bootstrap, settings.topic_social, 20)
    assert len(records) == 20


async def effect_count(scratch) -> int:
    async with scratch() as session:
        return await session.scalar(text("SELECT count(*) FROM effects"))


async def record_effect(session, envelope, payload):
    if envelope.subject == "poison":
        raise RuntimeError("this event always fails")
    await session.execute(text("INSERT INTO effects (event_id) VALUES (:id)"), {"id": envelope.id})


def effect_consumer(settings, name: str) -> EventConsumer:
    return EventConsumer(name=name, topics=[settings.topic_social], handlers={"hearth.post.created": record_effect},
                         max_attempts=3, retry_base_seconds=0.01)


async def produce(settings, *values_and_keys):
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for value, key in values_and_keys:
            await producer.send_and_wait(settings.topic_social, value=value, key=key)
    finally:
        await producer.stop()


async def test_consumer_that_dies_before_committing_offset_is_redelivered_without_double_effect(
        scratch, settings_for, monkeypatch):
    settings = settings_for("redelivery")
    await create_topics(settings)
    event = post_created(uuid7())
    await produce(settings, (event.to_bytes(), b"k"))

    async def crash(self, *args, **kwargs):
        raise RuntimeError("process died before committing the offset")

    first = effect_consumer(settings, "test.redelivery")
    with monkeypatch.context() as patch:
        patch.setattr(AIOKafkaConsumer, "commit", crash)
        with pytest.raises(RuntimeError, match="before committing"):
            await asyncio.wait_for(first.run(settings=settings, sessionmaker=scratch, stop=asyncio.Event()), 30)
    assert first.processed == 1 and await effect_count(scratch) == 1

    second = effect_consumer(settings, "test.redelivery")
    await run_until(lambda stop: second.run(settings=settings, sessionmaker=scratch, stop=stop),
                    lambda: _async(second.received >= 1), "redelivery")
    assert second.received == 1 and second.processed == 0  # seen again, deduplicated
    assert await effect_count(scratch) == 1


async def test_poison_messages_are_dead_lettered_and_later_events_still_flow(scratch, settings_for):
    settings = settings_for("poison")
    await create_topics(settings)
    failing = post_created(uuid7()).model_copy(update={"subject": "poison"})
    good = post_created(uuid7())
    # All on one key, hence one partition: the good event is behind both bad ones.
    await produce(settings, (b"\x00not json", b"k"), (failing.to_bytes(), b"k"), (good.to_bytes(), b"k"))
    consumer = effect_consumer(settings, "test.poison")
    await run_until(lambda stop: consumer.run(settings=settings, sessionmaker=scratch, stop=stop),
                    lambda: effect_count_is(scratch, 1), "the good event behind the poison")
    assert consumer.dead_lettered == 2
    dead = await read_topic(settings.kafka_bootstrap, settings.topic_social + DLQ_SUFFIX, 2)
    headers = [dict(r.headers) for r in dead]
    assert [h["hearth-attempts"] for h in headers] == [b"0", b"3"]
    assert dead[0].value == b"\x00not json" and b"always fails" in headers[1]["hearth-error"]
    async with scratch() as session:
        [effect_id] = (await session.execute(text("SELECT event_id FROM effects"))).scalars()
    assert effect_id == good.id


async def effect_count_is(scratch, n):
    return await effect_count(scratch) == n


async def _async(value):
    return value
