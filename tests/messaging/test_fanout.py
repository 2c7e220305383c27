"""The fan-out reader (shared/fanout.py) against a real broker: every partition, only what is new."""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer
from uuid6 import uuid7

from shared.config import HearthSettings
from shared.devstack.broker import TansuBroker
from shared.events import Envelope
from shared.events.messaging import TypingChanged
from shared.fanout import FanoutReader
from shared.kafka import ensure_topics
from shared.supervisor import Supervisor
from tests.waiting import until

BOUND = 30.0


@pytest.fixture(scope="module")
def broker():
    broker = TansuBroker()
    broker.start()
    yield broker
    broker.stop()


def envelope(n: int) -> Envelope:
    event = TypingChanged(conversation_id=uuid7(), person_id=uuid7(), typing=bool(n % 2), recipients=[])
    return Envelope.wrap(event, source="test", subject=f"key-{n}")


async def wait_for(predicate, message: str):
    deadline = time.monotonic() + BOUND
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out: {message}")
        await asyncio.sleep(0.05)


async def test_every_replica_gets_every_new_record_and_none_from_before_it_started(broker):
    topic = f"fanout.{uuid7().hex[:8]}"
    await ensure_topics(broker.bootstrap, [topic], partitions=4)
    settings = HearthSettings(kafka_bootstrap=broker.bootstrap, kafka_fetch_max_wait_ms=20)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    old = [envelope(n) for n in range(8)]
    for e in old:  # before the readers start: never delivered, even where seek_to_end replays a tail
        await producer.send_and_wait(topic, e.to_bytes(), key=e.subject.encode())
    got: dict[str, list] = {"a": [], "b": []}

    def deliver_to(name):
        async def deliver(env: Envelope):
            if env.subject == "key-poison":
                raise RuntimeError("one bad delivery")
            got[name].append(env.id)
        return deliver

    stop = asyncio.Event()
    readers = [FanoutReader(name=n, topics=[topic], deliver=deliver_to(n), settings=settings) for n in got]
    tasks = [asyncio.create_task(r.run(stop)) for r in readers]
    try:
        await wait_for(lambda: all(r.running for r in readers), "readers assigned")
        await until(lambda: time.time() * 1000 > max(r.started_ms for r in readers),  # record timestamps are ms
                    message="a later millisecond than every reader's start")
        poison = Envelope.wrap(TypingChanged(conversation_id=uuid7(), person_id=uuid7(), typing=True),
                               source="test", subject="key-poison")
        await producer.send_and_wait(topic, poison.to_bytes(), key=b"key-poison")
        new = [envelope(n) for n in range(8, 20)]
        for e in new:  # keys spread over all four partitions
            await producer.send_and_wait(topic, e.to_bytes(), key=e.subject.encode())
        await wait_for(lambda: all(len(v) >= len(new) for v in got.values()), "new records on both readers")
        for name, ids in got.items():
            assert sorted(ids) == sorted(e.id for e in new), name  # all partitions, nothing old, nothing twice
        assert not any(t.done() for t in tasks)  # a failing delivery does not end the reader's run
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await producer.stop()


async def test_the_supervised_reader_restarts_after_errors_until_the_topic_exists(broker):
    topic = f"fanout.late.{uuid7().hex[:8]}"
    settings = HearthSettings(kafka_bootstrap="127.0.0.1:1", kafka_fetch_max_wait_ms=20)  # nothing listens there
    reader = FanoutReader(name="late", topics=[topic], deliver=lambda e: asyncio.sleep(0), settings=settings)
    supervisor = Supervisor(min_backoff=0.05, max_backoff=0.2)  # the one restart loop (no second one inside)
    job = supervisor.add(reader.name, reader.run, kind="fanout", source=reader)
    supervisor.start()
    try:
        await wait_for(lambda: job.restarts >= 2, "restarts while the broker is unreachable")
        assert not reader.running and job.last_error is not None
        settings.kafka_bootstrap = broker.bootstrap  # the broker "comes back"
        await ensure_topics(broker.bootstrap, [topic], partitions=2)
        await wait_for(lambda: reader.running and job.up, "reader running once the broker answers")
    finally:
        await supervisor.shutdown(timeout=BOUND)


async def test_records_stamped_before_the_reader_started_are_dropped():
    """What Tansu's seek_to_end replays (the tail of the last batch) never reaches a socket."""
    from types import SimpleNamespace
    delivered = []

    async def deliver(env):
        delivered.append(env.subject)

    reader = FanoutReader(name="t", topics=["t"], deliver=deliver, settings=HearthSettings())
    start_ms = 1_000_000
    await reader._handle(SimpleNamespace(timestamp=start_ms - 1, value=envelope(1).to_bytes()), start_ms)
    await reader._handle(SimpleNamespace(timestamp=start_ms, value=envelope(2).to_bytes()), start_ms)
    await reader._handle(SimpleNamespace(timestamp=start_ms + 5, value=b"not an envelope"), start_ms)
    assert delivered == ["key-2"] and reader.skipped == 1
