"""The outbox relay and the consumer loop against a real PostgreSQL and a real Kafka-protocol broker."""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaTimeoutError
from sqlalchemy import func, select, text
from uuid6 import uuid7

from shared.events import Envelope
from shared.kafka import DLQ_SUFFIX, EventConsumer, make_producer, topic_map
from shared.outbox import LeaseLost, OutboxRelay, _LeaseGuard, add_event, outbox_table
from tests.events import post_created
from tests.shared.conftest import create_topics
from tests.waiting import until

END_MARKER = b"end-of-topic marker"


async def eventually(predicate, *, timeout: float = 20.0, message: str = "condition"):
    """Wait for an asynchronous effect, bounded; fails the test when it never happens."""
    await until(predicate, timeout=timeout, message=message)


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


async def read_to_end(bootstrap: str, topic: str, timeout: float = 20.0):
    """Everything the topic holds now: a marker is appended to every partition and read up to."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        for p in partitions:
            await producer.send_and_wait(topic, value=END_MARKER, partition=p)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    records, open_partitions = [], set(partitions)
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        deadline = time.monotonic() + timeout
        while open_partitions and time.monotonic() < deadline:
            for tp, batch in (await consumer.getmany(timeout_ms=200)).items():
                for record in batch:
                    if record.value == END_MARKER:
                        open_partitions.discard(tp.partition)
                    elif tp.partition in open_partitions:
                        records.append(record)
    finally:
        await consumer.stop()
    assert not open_partitions, f"partitions {open_partitions} of {topic} not read to the end in {timeout} s"
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


async def test_relay_keeps_each_aggregates_events_in_commit_order_and_never_publishes_rolled_back_ones(
        scratch, scratch_engine, settings_for):
    settings = settings_for("relay-order")
    await create_topics(settings)  # 2 partitions: three aggregates cannot all share one
    aggregates = ["aggregate-a", "aggregate-b", "aggregate-c"]
    committed: dict[str, list] = {a: [] for a in aggregates}
    for _ in range(4):  # interleaved, one transaction each: a, b, c, a, b, c, ...
        for aggregate in aggregates:
            committed[aggregate] += await queue_posts(scratch, 1, subject=aggregate)
    await queue_posts(scratch, 2, commit=False, subject="aggregate-a")
    relay = relay_for(settings, scratch_engine)
    await run_until(relay.run, lambda: _async(relay.published >= 12), "relay to publish")
    records = await read_to_end(settings.kafka_bootstrap, settings.topic_social)
    envelopes = [Envelope.from_bytes(r.value) for r in records]
    assert len(envelopes) == 12  # the rolled-back two never, nothing twice
    assert all(r.key == e.subject.encode() for r, e in zip(records, envelopes))  # key = aggregate id
    # The guarantee is per key (one partition each), not across keys: compare each aggregate's sequence.
    seen = {a: [e.id for e in envelopes if e.subject == a] for a in aggregates}
    assert seen == {a: [e.id for e in events] for a, events in committed.items()}
    async with scratch() as session:
        pending = await session.scalar(select(func.count()).select_from(outbox_table)
                                       .where(outbox_table.c.published_at.is_(None)))
    assert pending == 0 and relay.published == 12


class CommitDuringFirstSend:
    """A producer whose first send waits for a row committed meanwhile to wake the relay, so the relay
    finds new rows waiting when its batch is acked (it carries that batch's mark into the next read)."""

    def __init__(self, producer, relay: OutboxRelay, commit):
        self.producer, self.relay, self.commit, self.first = producer, relay, commit, True

    def __getattr__(self, name):
        return getattr(self.producer, name)

    async def send(self, *args, **kwargs):
        if self.first:
            self.first = False
            await self.commit()
            await until(lambda: _async(self.relay._wake.is_set()), message="the NOTIFY of the row committed mid-batch")
        return await self.producer.send(*args, **kwargs)


async def batch_then_more(scratch, scratch_engine, settings_for, name: str):
    """A relay over three queued rows of one aggregate, and `commit_more` to queue two more into `later`."""
    settings = settings_for(name)
    await create_topics(settings)
    first = await queue_posts(scratch, 3, subject="aggregate-a")
    later: list = []

    async def commit_more():
        later.extend(await queue_posts(scratch, 2, subject="aggregate-a"))

    return settings, relay_for(settings, scratch_engine), first, later, commit_more


async def assert_published_once_in_order(scratch, settings, relay: OutboxRelay, events: list) -> None:
    """The topic holds exactly these events, once each, in this order, and every outbox row is marked."""
    records = await read_to_end(settings.kafka_bootstrap, settings.topic_social)
    assert [Envelope.from_bytes(r.value).id for r in records] == [e.id for e in events]
    async with scratch() as session:
        pending = await session.scalar(select(func.count()).select_from(outbox_table)
                                       .where(outbox_table.c.published_at.is_(None)))
    assert pending == 0 and relay.published == len(events)


async def test_relay_marks_a_batch_in_its_next_read_and_never_publishes_it_again(scratch, scratch_engine, settings_for):
    settings, relay, first, later, commit_more = await batch_then_more(scratch, scratch_engine, settings_for, "relay-carry")
    relay.producer_factory = lambda: CommitDuringFirstSend(make_producer(settings), relay, commit_more)
    await run_until(relay.run, lambda: _async(relay.published >= 5), "relay to publish both batches")
    # Each row once (the batch marked in the read that followed was not read again), in commit order.
    await assert_published_once_in_order(scratch, settings, relay, first + later)


class FailFirstBatchAfterCommit:
    """The first batch's sends are never published and fail only after a row committed meanwhile has woken
    the relay (so it reads that row ahead while the batch is 'being acked'); later producers publish."""

    def __init__(self, producer, relay: OutboxRelay, commit, state: dict):
        self.producer, self.relay, self.commit, self.state = producer, relay, commit, state

    def __getattr__(self, name):
        return getattr(self.producer, name)

    async def send(self, *args, **kwargs):
        if self.state["failing"] is None:
            self.state["failing"] = asyncio.get_running_loop().create_future()
            await self.commit()
            await until(lambda: _async(self.relay._wake.is_set()), message="the NOTIFY of the row committed mid-batch")
            asyncio.get_running_loop().call_later(0.5, self.state["failing"].set_exception,
                                                  KafkaTimeoutError("the batch was never acked"))
        if not self.state["failing"].done():
            return self.state["failing"]
        return await self.producer.send(*args, **kwargs)


async def test_relay_reads_ahead_while_a_batch_is_acked_and_a_failed_batch_goes_out_again_before_it(
        scratch, scratch_engine, settings_for):
    settings, relay, first, later, commit_more = await batch_then_more(scratch, scratch_engine, settings_for, "relay-ahead")
    state = {"failing": None}
    relay.producer_factory = lambda: FailFirstBatchAfterCommit(make_producer(settings), relay, commit_more, state)
    reads_ahead = []
    read = relay._read

    async def observed(conn, in_flight=()):
        rows = await read(conn, in_flight)
        if in_flight:
            reads_ahead.append(([r["id"] for r in rows], state["failing"].done()))
        return rows

    relay._read = observed
    await run_until(relay.run, lambda: _async(relay.published >= 5), "relay to publish after the failed batch")
    # The later rows were read while the first batch was still unacknowledged ...
    assert reads_ahead and reads_ahead[0][1] is False and len(reads_ahead[0][0]) == 2
    # ... but never sent before it: the failed batch went out again first, each row once, in commit order.
    await assert_published_once_in_order(scratch, settings, relay, first + later)


class CountingConnection:
    def __init__(self, fail: bool = False):
        self.pings, self.fail = 0, fail

    async def fetchval(self, sql):
        self.pings += 1
        if self.fail:
            raise ConnectionResetError("the lease session is gone")
        return 1


async def test_lease_check_pings_only_when_the_last_ping_is_older_than_half_the_lease():
    conn = CountingConnection()
    guard = _LeaseGuard(conn, timeout=5.0)
    await guard.check()  # never confirmed: a round trip
    await guard.check()  # confirmed just now: the session cannot have timed out since
    assert conn.pings == 1
    guard.confirmed_at -= 2.5  # as after a freeze: the monotonic clock ran on
    await guard.check()
    assert conn.pings == 2
    conn.fail = True
    guard.confirmed_at -= 2.5
    with pytest.raises(LeaseLost):
        await guard.check()
    with pytest.raises(LeaseLost):  # lost for good, without asking again
        await guard.check()
    assert conn.pings == 3


class ObservedWake(asyncio.Event):
    """The relay's wake-up event, telling whether the relay is asleep on it right now."""

    waiting = False

    async def wait(self):
        self.waiting = True
        try:
            return await super().wait()
        finally:
            self.waiting = False


async def test_relay_wakes_on_notify_not_on_its_poll(scratch, scratch_engine, settings_for):
    settings = settings_for("relay-notify")
    await create_topics(settings)
    relay = relay_for(settings, scratch_engine, poll_seconds=60)
    relay._wake = ObservedWake()
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await until(lambda: relay._wake.waiting, message="the relay to fall asleep on LISTEN (60 s poll)")
        await queue_posts(scratch, 1)
        # Only the NOTIFY at commit can wake it within this bound.
        await eventually(lambda: _async(relay.published == 1), timeout=10, message="NOTIFY to wake the relay")
    finally:
        stop.set()
        await task


def count_lock_refusals(relay: OutboxRelay) -> dict:
    """Count the times `relay` asks for the lease and is refused."""
    refused = {"n": 0}
    try_lock = relay._try_lock

    async def counted(lease):
        got = await try_lock(lease)
        refused["n"] += not got
        return got

    relay._try_lock = counted
    return refused


async def test_only_one_relay_per_database_publishes(scratch, scratch_engine, settings_for):
    settings = settings_for("relay-lock")
    await create_topics(settings)
    relays = [relay_for(settings, scratch_engine), relay_for(settings, scratch_engine)]
    refusals = [count_lock_refusals(r) for r in relays]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    try:
        await until(lambda: sum(r.holding_lease for r in relays) == 1 and sum(c["n"] for c in refusals) >= 1,
                    message="one relay to hold the lease and the other to be refused it")
        await queue_posts(scratch, 20)
        await eventually(lambda: _async(sum(r.published for r in relays) >= 20), message="publishing")
        standby = next(c for r, c in zip(relays, refusals) if not r.holding_lease)
        asked = standby["n"]
        # The standby had its chance after the events were published, and was refused again.
        await until(lambda: standby["n"] > asked, message="the standby to ask for the lease again")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert sorted(r.published for r in relays) == [0, 20]
    records = await read_to_end(settings.kafka_bootstrap, settings.topic_social)
    assert len(records) == len({r.value for r in records}) == 20  # nothing published twice


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
