"""The four services as real processes, a real broker and real databases: the whole event path."""

import asyncio
import re

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.config import HearthSettings
from shared.devstack.broker import TansuBroker
from shared.devstack.ports import free_port
from shared.devstack.stack import (SERVICES, drop_databases, prepare_databases, prepare_topics, republish_since,
                                   service_processes, signing_key_file, stop_all)
from shared.kafka import ensure_topics
from shared.testing import throwaway_dir
from tests.waiting import eventually

E2E_PREFIX = "hearth_e2e_"
ADMIN = {"email": "admin@e2e.local", "password": "e2e-admin-password"}


class Stack:
    def __init__(self, server_url: str, broker: TansuBroker, processes):
        self.server_url, self.broker, self.processes = server_url, broker, processes
        self.urls = {p.name: p.url for p in processes}

    async def restart_broker(self) -> None:
        """A fresh broker on the same port, as the launcher does it: topics created again and what the
        previous (memory-only) broker held published again."""
        previous_start = self.broker.started_at
        self.broker.start()
        await ensure_topics(self.broker.bootstrap, HearthSettings().topics)
        await republish_since(self.server_url, E2E_PREFIX, previous_start)


@pytest.fixture(scope="session")
def stack(pg_server_url):
    asyncio.run(drop_databases(pg_server_url, [E2E_PREFIX + s for s in SERVICES]))
    prepare_databases(pg_server_url, E2E_PREFIX)
    with throwaway_dir("hearth-e2e-") as workdir:
        broker = TansuBroker(log_file=workdir / "broker.log")
        broker.start()
        prepare_topics(broker.bootstrap)
        processes = service_processes(
            server_url=pg_server_url, prefix=E2E_PREFIX, bootstrap=broker.bootstrap,
            key_file=signing_key_file(workdir), ports={s: free_port() for s in SERVICES}, log_dir=workdir,
            extra_env={"HEARTH_ENV": "test", "HEARTH_ADMIN_EMAIL": ADMIN["email"],
                       "HEARTH_ADMIN_PASSWORD": ADMIN["password"], "HEARTH_DATABASE_POOL_SIZE": "3",
                       # Counted as in production (the in-process tests count in their own sessions), with
                       # limits no test reaches: rate-limit behaviour itself is tested in tests/posts.
                       "HEARTH_RATE_LIMITS_ENABLED": "true", **{f"HEARTH_RATE_LIMIT_{rule}": "100000/60" for rule in (
                           "PERSON", "ADDRESS", "LOGIN", "SCIM", "TOKEN_CREATE", "FOLLOW", "POST")}})
        try:
            for p in processes:
                p.start()
            for p in processes:
                p.wait_healthy(timeout=60)
            yield Stack(pg_server_url, broker, processes)
        finally:
            stop_all(processes)
            broker.stop()


@pytest.fixture
async def http(stack):
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def settled(stack: Stack, *, timeout: float = 60.0) -> None:
    """Wait until everything written so far has been consumed: no outbox row is pending in any service,
    and every consumer group has committed, on every topic it reads, up to the end of each partition.

    A test that counts (or checks that nothing arrives twice) calls this first or last instead of
    hoping that what earlier tests wrote, or late duplicates, have landed after some fixed time."""
    await eventually(lambda: pending_outbox_rows(stack), lambda n: n == 0, timeout=timeout,
                     message="every service's outbox to be published")
    ends = await partition_ends(stack.broker.bootstrap, HearthSettings().topics)
    groups = await consumer_groups(stack)
    assert ends and groups, (ends, groups)  # never vacuously settled
    await eventually(lambda: groups_behind(stack.broker.bootstrap, groups, ends), lambda behind: not behind,
                     timeout=timeout, interval=0.2, message="every consumer group to commit to the end of its topics")


async def pending_outbox_rows(stack: Stack) -> int:
    pending = 0
    for service in SERVICES:
        conn = await asyncpg.connect(stack.server_url.rsplit("/", 1)[0] + f"/{E2E_PREFIX}{service}")
        try:
            pending += await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        finally:
            await conn.close()
    return pending


async def partition_ends(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Each partition's end, from fetch responses (Tansu answers ListOffsets LATEST wrongly)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await eventually(lambda: _highwaters(consumer, partitions), lambda found: None not in found.values(),
                                timeout=20, interval=0, message="a fetch response from every partition")
    finally:
        await consumer.stop()
    return ends


async def _highwaters(consumer: AIOKafkaConsumer, partitions) -> dict:
    await consumer.getmany(timeout_ms=200)
    return {tp: consumer.highwater(tp) for tp in partitions}


async def consumer_groups(stack: Stack) -> set[str]:
    """The consumer groups of the running services: each consumer job's name is its group id."""
    groups = set()
    async with httpx.AsyncClient(timeout=10) as client:
        for url in stack.urls.values():
            groups |= set(re.findall(r'hearth_consumer_lag\{job="([^"]+)"', (await client.get(f"{url}/metrics")).text))
    return groups


async def groups_behind(bootstrap: str, groups: set[str], ends: dict[TopicPartition, int]) -> dict:
    """(group, partition): committed offset, for every partition a group has not consumed to its end.

    A group reads the topics it has committed anything on; on those, a partition it never committed
    counts as offset 0."""
    behind = {}
    for group in groups:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            committed = {tp: await consumer.committed(tp) for tp in ends}
        finally:
            await consumer.stop()
        topics = {tp.topic for tp, offset in committed.items() if offset is not None}
        for tp, end in ends.items():
            if tp.topic in topics and (committed[tp] or 0) < end:
                behind[(group, f"{tp.topic}:{tp.partition}")] = committed[tp]
    return behind
