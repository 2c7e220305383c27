"""The event path under faults, against a real PostgreSQL and a real Kafka-protocol broker.

Each test injects one fault at the boundary where it happens in production (a broker that refuses,
a commit that fails, a relay process that freezes) and checks that nothing is lost or doubled.
"""

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError, KafkaTimeoutError
from sqlalchemy import text
from uuid6 import uuid7

from shared.devstack.broker import TansuBroker
from shared.devstack.stack import republish_since
from shared.events import Envelope
from shared.kafka import DLQ_SUFFIX, EventConsumer, ensure_topics
from shared.migrations import REPO_ROOT
from shared.outbox import add_event
from shared.replay import replay
from shared.supervisor import Supervisor
from tests.events import post_created
from tests.shared.conftest import create_topics
from tests.shared.test_event_path import (_async, effect_count, eventually, produce, read_topic, record_effect,
                                          relay_for, run_until)
from tests.waiting import until


def consumer_for(settings, name: str, handler=record_effect, **kwargs) -> EventConsumer:
    return EventConsumer(name=name, topics=[settings.topic_social], handlers={"hearth.post.created": handler},
                         max_attempts=3, retry_base_seconds=0.01, max_backoff_seconds=0.05, **kwargs)


async def run_consumer_until(consumer, settings, scratch, predicate, message):
    await run_until(lambda stop: consumer.run(settings=settings, sessionmaker=scratch, stop=stop), predicate, message)


async def test_a_database_blip_is_waited_out_and_never_dead_lettered(scratch, settings_for):
    settings = settings_for("blip")
    await create_topics(settings)
    events = [post_created(uuid7()) for _ in range(3)]
    await produce(settings, *[(e.to_bytes(), b"k") for e in events])
    failures = {"left": 12}  # far more than max_attempts (3): a count would dead-letter them

    async def flaky(session, envelope, payload):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionRefusedError("connection to the database refused")
        await record_effect(session, envelope, payload)

    consumer = consumer_for(settings, "test.blip", flaky)
    await run_consumer_until(consumer, settings, scratch, lambda: _async(consumer.processed == 3), "the blip to end")
    assert consumer.dead_lettered == 0 and consumer.retried == 12
    assert await effect_count(scratch) == 3


async def test_a_failed_offset_commit_does_not_stop_the_consumer(scratch, settings_for, monkeypatch):
    settings = settings_for("commit-fails")
    await create_topics(settings)
    real_commit = AIOKafkaConsumer.commit
    calls = {"n": 0}

    async def commit_failing_once(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise CommitFailedError("the group rebalanced (UnknownMemberId)")
        return await real_commit(self, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", commit_failing_once)
    first, second = post_created(uuid7()), post_created(uuid7())
    consumer = consumer_for(settings, "test.commit-fails")
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(settings=settings, sessionmaker=scratch, stop=stop))
    try:
        await produce(settings, (first.to_bytes(), b"k"))
        await eventually(lambda: _async(consumer.commit_failures == 1), message="the failed commit")
        await produce(settings, (second.to_bytes(), b"k"))  # the loop must still be consuming
        await eventually(lambda: _async(consumer.processed == 2), message="the event after the failed commit")
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert not task.exception() and await effect_count(scratch) == 2


async def test_a_failing_dead_letter_send_is_retried_and_the_record_kept(scratch, settings_for, monkeypatch):
    settings = settings_for("dlq-fails")
    await create_topics(settings)
    poison = post_created(uuid7()).model_copy(update={"subject": "poison"})
    good = post_created(uuid7())
    await produce(settings, (poison.to_bytes(), b"k"), (good.to_bytes(), b"k"))
    real_send = AIOKafkaProducer.send_and_wait
    refused = {"left": 4}

    async def send_while_broker_stalls(self, topic, *args, **kwargs):
        if topic.endswith(DLQ_SUFFIX) and refused["left"] > 0:
            refused["left"] -= 1
            raise KafkaTimeoutError("the broker stalled")
        return await real_send(self, topic, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaProducer, "send_and_wait", send_while_broker_stalls)
    consumer = consumer_for(settings, "test.dlq-fails")
    await run_consumer_until(consumer, settings, scratch, lambda: _async(consumer.processed == 1),
                             "the good event behind the poison")
    assert refused["left"] == 0 and consumer.dead_lettered == 1
    [dead] = await read_topic(settings.kafka_bootstrap, settings.topic_social + DLQ_SUFFIX, 1)
    assert Envelope.from_bytes(dead.value).id == poison.id


async def test_event_types_a_consumer_does_not_handle_are_counted_not_dead_lettered(scratch, settings_for):
    settings = settings_for("unknown-type")
    await create_topics(settings)
    newer = post_created(uuid7()).model_copy(update={"type": "hearth.hologram.created"})
    good = post_created(uuid7())
    await produce(settings, (newer.to_bytes(), b"k"), (good.to_bytes(), b"k"))
    consumer = consumer_for(settings, "test.unknown-type")
    await run_consumer_until(consumer, settings, scratch, lambda: _async(consumer.processed == 1), "the known event")
    assert consumer.unknown_types == {"hearth.hologram.created": 1} and consumer.dead_lettered == 0


async def test_supervisor_restarts_a_crashed_job_and_reports_it_down_meanwhile():
    supervisor = Supervisor(min_backoff=0.2)
    runs = []

    async def crashes_twice(stop):
        runs.append(time.monotonic())
        if len(runs) <= 2:
            raise RuntimeError("consumer died")
        await stop.wait()

    job = supervisor.add("flaky", crashes_twice, kind="consumer")
    supervisor.start()
    seen_down = False

    def third_run_up() -> bool:
        nonlocal seen_down
        seen_down = seen_down or not supervisor.healthy  # sampled between the restarts' backoffs
        return len(runs) == 3 and supervisor.healthy

    try:
        await until(third_run_up, timeout=10, interval=0.01, message="the job's third run")
        assert job.restarts == 2 and seen_down
        assert "consumer died" in job.last_error
    finally:
        await supervisor.shutdown(timeout=5)
    assert not job.up


async def test_dead_letters_are_replayed_once_after_a_fix(scratch, settings_for):
    settings = settings_for("replay")
    await create_topics(settings)
    poison = post_created(uuid7()).model_copy(update={"subject": "poison"})
    await produce(settings, (poison.to_bytes(), b"k"))
    fixed = {"yet": False}

    async def handler(session, envelope, payload):
        if not fixed["yet"]:
            raise RuntimeError("a bug in the handler")
        await record_effect(session, envelope.model_copy(update={"subject": "fixed"}), payload)

    consumer = consumer_for(settings, "test.replay", handler)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(settings=settings, sessionmaker=scratch, stop=stop))
    try:
        await eventually(lambda: _async(consumer.dead_lettered == 1), message="the dead letter")
        listing = io.StringIO()
        assert await replay(settings.topic_social, bootstrap=settings.kafka_bootstrap, dry_run=True, out=listing) == 1
        assert str(poison.id) in listing.getvalue() and "a bug in the handler" in listing.getvalue()
        assert await effect_count(scratch) == 0  # a dry run changes nothing
        fixed["yet"] = True
        assert await replay(settings.topic_social, bootstrap=settings.kafka_bootstrap, dry_run=False,
                            out=io.StringIO()) == 1
        await eventually(lambda: _async(consumer.processed == 1), message="the replayed event")
        assert await replay(settings.topic_social, bootstrap=settings.kafka_bootstrap, dry_run=False,
                            out=io.StringIO()) == 0  # already replayed
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert await effect_count(scratch) == 1


async def test_relay_purges_what_is_past_its_horizon(scratch, scratch_engine, settings_for):
    relay = relay_for(settings_for("purge"), scratch_engine)
    async with scratch() as session:
        await session.execute(text("INSERT INTO processed_events (consumer, event_id, processed_at) VALUES "
                                   "('c', :old, now() - interval '15 days'), ('c', :new, now())"),
                              {"old": uuid7(), "new": uuid7()})
        await session.commit()
    import asyncpg
    conn = await asyncpg.connect(relay.dsn)
    try:
        await relay._purge(conn)
        assert await conn.fetchval("SELECT count(*) FROM processed_events") == 1
    finally:
        await conn.close()


async def _queue(scratch, n: int, subject) -> list[Envelope]:
    async with scratch() as session:
        events = [await add_event(session, post_created(uuid7()).payload(), subject=subject) for _ in range(n)]
        await session.commit()
    return events


async def _lease_holder_pid(scratch) -> int | None:
    async with scratch() as session:
        name = await session.scalar(text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'hearth-relay:scratch:lease:%'"))
    return int(name.rsplit(":", 1)[1]) if name else None


async def test_a_frozen_relay_loses_its_lease_and_a_standby_publishes_in_order(scratch, scratch_engine, settings_for):
    settings = settings_for("frozen-relay")
    await create_topics(settings)
    dsn = scratch_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    frozen = subprocess.Popen([sys.executable, "-m", "tests.shared.relay_process", dsn, settings.kafka_bootstrap,
                               settings.topic_social, "2"], cwd=REPO_ROOT)
    standby = relay_for(settings, scratch_engine, lease_seconds=2)
    stop = asyncio.Event()
    task = None
    try:
        await eventually(lambda: _holder_is(scratch, frozen.pid), message="the subprocess relay to take the lease")
        task = asyncio.create_task(standby.run(stop))
        before = await _queue(scratch, 5, "aggregate-1")
        await eventually(lambda: _published(scratch, 5), message="the holder publishing")
        assert standby.published == 0

        frozen.send_signal(signal.SIGSTOP)  # a hung replica: its sockets stay open, it answers nothing
        frozen_at = time.monotonic()
        during = await _queue(scratch, 5, "aggregate-1")
        await eventually(lambda: _async(standby.published == 5), timeout=30, message="the standby taking over")
        print(f"failover after {time.monotonic() - frozen_at:.1f} s (lease 2 s)")

        frozen.send_signal(signal.SIGCONT)  # it wakes up believing it still holds the lease
        after = await _queue(scratch, 5, "aggregate-1")
        await eventually(lambda: _async(standby.published == 10), message="the new holder going on")
        assert await _lease_holder_pid(scratch) == os.getpid()
    finally:
        frozen.send_signal(signal.SIGCONT)
        frozen.terminate()
        frozen.wait(10)
        stop.set()
        if task:
            await asyncio.wait_for(task, 20)
    records = await read_topic(settings.kafka_bootstrap, settings.topic_social, 15)
    first_seen = list(dict.fromkeys(Envelope.from_bytes(r.value).id for r in records))
    assert first_seen == [e.id for e in before + during + after]  # one key: commit order, nothing missing


async def _holder_is(scratch, pid: int) -> bool:
    return await _lease_holder_pid(scratch) == pid


async def _published(scratch, n: int) -> bool:
    async with scratch() as session:
        return await session.scalar(text("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")) >= n


async def test_a_restarted_memory_broker_gets_what_the_previous_one_held(scratch, scratch_engine, pg_server_url,
                                                                       scratch_database, settings_for):
    broker = TansuBroker()
    broker.start()
    settings = settings_for("amnesia").model_copy(update={"kafka_bootstrap": broker.bootstrap})
    try:
        await ensure_topics(broker.bootstrap, [settings.topic_social])
        events = await _queue(scratch, 4, "aggregate-2")
        relay = relay_for(settings, scratch_engine)
        await run_until(relay.run, lambda: _async(relay.published == 4), "publishing into the first broker")
        previous_start = broker.started_at
        broker.stop()  # memory only: the four events are gone with it
        broker.start()
        await ensure_topics(broker.bootstrap, [settings.topic_social])
        assert await _republish_scratch(pg_server_url, scratch_database, previous_start) == 4
        relay = relay_for(settings, scratch_engine)
        await run_until(relay.run, lambda: _async(relay.published == 4), "publishing again")
        records = await read_topic(broker.bootstrap, settings.topic_social, 4)
        assert [Envelope.from_bytes(r.value).id for r in records] == [e.id for e in events]
    finally:
        broker.stop()


async def _republish_scratch(server_url, database, since: datetime) -> int:
    # The function the launcher and the end-to-end stack call after a broker restart.
    return await republish_since(server_url, database.removesuffix("scratch"), since, services=("scratch",))


async def test_a_batch_consumer_applies_a_fetch_at_once_and_isolates_poison(scratch, settings_for):
    settings = settings_for("batch")
    await create_topics(settings)
    calls = []

    async def apply_all(session, items):
        calls.append(len(items))
        for envelope, payload in items:
            await record_effect(session, envelope, payload)

    events = [post_created(uuid7()) for _ in range(6)]
    poison = post_created(uuid7()).model_copy(update={"subject": "poison"})
    consumer = consumer_for(settings, "test.batch", batch_handler=apply_all)
    # Already applied once (say, before a restart): the batch must not apply it again.
    assert await consumer.apply(scratch, events[0], events[0].payload(), consumer.handlers["hearth.post.created"])
    await produce(settings, *[(e.to_bytes(), b"k") for e in events + events[:2]])
    await run_consumer_until(consumer, settings, scratch, lambda: _async(consumer.received >= 8), "the batch")
    assert await effect_count(scratch) == 6 and max(calls) > 1  # whole fetches, each event once

    await produce(settings, (poison.to_bytes(), b"k"), (post_created(uuid7()).to_bytes(), b"k"))
    await run_consumer_until(consumer, settings, scratch, lambda: _async(consumer.dead_lettered == 1),
                             "the poison to be isolated")
    assert await effect_count(scratch) == 7  # the good event beside the poison was applied
