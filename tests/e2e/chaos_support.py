"""Chaos tooling shared by tests/e2e/test_chaos.py and bench/chaos.py.

A stack of its own (its own embedded PostgreSQL, its own Tansu broker, posts + notifications +
analytics as real processes on free ports, relay lease 2 s) so faults never disturb other tests; a
steady writer posting through posts' REST API with an @mention; and the ledger that says, from the
databases, whether every accepted write was applied exactly once by every consumer.

The ledger is built on what the event path itself guarantees, not on the consumers' domain tables:
for each accepted post its `hearth.post.created` outbox row in posts' database, and the
`processed_events (consumer, event_id)` row in the notifications and analytics databases (that row
commits with the effect, so one row means applied exactly once). Effect rows are counted where a
stable table allows it (notifications of kind `mention` about the post, analytics' `event_log`), to
catch an effect applied twice.
"""

import asyncio
import json
import os
import signal
import time
from collections import Counter
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.config import HearthSettings
from shared.devstack.broker import TansuBroker
from shared.devstack.ports import free_port
from shared.devstack.postgres import EmbeddedPostgres
from shared.devstack.stack import (
    SERVICES,
    ServiceProcess,
    prepare_databases,
    prepare_topics,
    republish_since,
    service_processes,
    signing_key_file,
    stop_all,
)
from shared.kafka import DLQ_SUFFIX, ensure_topics
from shared.testing import throwaway_dir

PREFIX = "hearth_chaos_"
ADMIN = {"email": "admin@chaos.local", "password": "chaos-admin-password"}
# The consumer (group and dedupe namespace) that must apply a post's creation, per database.
CONSUMERS = {"notifications": "notifications.social", "analytics": "analytics.events"}
RUNNING = ("posts", "notifications", "analytics")  # the event path under test; messaging is not on it
LEASE_SECONDS = 2
POST_CREATED = "hearth.post.created"


# --------------------------------------------------------------------------------------------- stack

class ChaosStack:
    def __init__(self, workdir: Path, postgres: EmbeddedPostgres, broker: TansuBroker, processes: list[ServiceProcess]):
        self.workdir, self.postgres, self.broker, self.processes = workdir, postgres, broker, processes
        self.server_url = postgres.url
        self.extra: list[ServiceProcess] = []  # more replicas started by a scenario
        self.poison: set[str] = set()  # event ids a scenario injected on purpose: the only allowed dead letters
        self._people: dict | None = None

    def service(self, name: str) -> ServiceProcess:
        return next(p for p in self.processes if p.name == name)

    def url(self, name: str) -> str:
        return self.service(name).url

    def dsn(self, database: str) -> str:
        return self.server_url.rsplit("/", 1)[0] + "/" + database

    async def connect(self, service: str | None = None) -> asyncpg.Connection:
        return await asyncio.wait_for(asyncpg.connect(self.dsn(PREFIX + service if service else "postgres")),
                                      timeout=5)

    def replica(self, name: str) -> ServiceProcess:
        """Another process of a service: same environment, another free port."""
        original = self.service(name)
        log_file = self.workdir / f"{name}-replica-{len(self.extra) + 1}.log"
        replica = ServiceProcess(name, free_port(), dict(original.env), log_file=log_file)
        self.extra.append(replica)
        return replica

    # ---- faults, each the way an operator (or the launcher) would meet or do it

    async def kill_broker(self) -> None:
        """SIGKILL, as a crash: a memory-only broker loses topics, messages and group offsets."""
        process = self.broker.process
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
        self.broker.process = None

    async def start_broker_again(self) -> int:
        """As `python -m shared.devstack run` does after the broker exited: a fresh broker on the same
        port, topics created, and the rows published since the previous broker started published again."""
        previous_start = self.broker.started_at
        await asyncio.to_thread(self.broker.start)
        await ensure_topics(self.broker.bootstrap, HearthSettings().topics)
        return await republish_since(self.server_url, PREFIX, previous_start)

    async def refuse_connections(self, service: str) -> None:
        admin = await self.connect()
        try:
            await admin.execute(f'ALTER DATABASE "{PREFIX}{service}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = $1 AND pid <> pg_backend_pid()", PREFIX + service)
        finally:
            await admin.close()

    async def allow_connections(self, service: str) -> None:
        admin = await self.connect()
        try:
            await admin.execute(f'ALTER DATABASE "{PREFIX}{service}" ALLOW_CONNECTIONS true')
        finally:
            await admin.close()

    async def stop_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.stop)

    async def start_postgres(self) -> None:
        port = self.postgres.port
        await asyncio.to_thread(self.postgres.start)
        assert self.postgres.port == port, "PostgreSQL came back on another port; the services cannot follow"

    async def lease_holders(self, service: str = "posts") -> list[int]:
        """OS pids of the processes whose relay holds `service`'s advisory lock (application_name
        `hearth-relay:<service>:lease:<pid>`, see shared.outbox)."""
        conn = await self.connect()
        try:
            rows = await conn.fetch(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = $1 AND a.application_name LIKE $2",
                PREFIX + service, f"hearth-relay:{service}:lease:%")
        finally:
            await conn.close()
        return [int(r["application_name"].rsplit(":", 1)[1]) for r in rows]

    async def ensure_running(self) -> None:
        """Put the stack back as the session fixture built it (a scenario may have killed a process)."""
        for p in self.extra:
            if p.process and p.process.poll() is None:
                try:
                    os.kill(p.process.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                await asyncio.to_thread(p.stop)
        self.extra.clear()
        for p in self.processes:
            if p.process.poll() is not None:
                p.start()
                await asyncio.to_thread(p.wait_healthy, 60)

    async def people(self, client: httpx.AsyncClient) -> dict:
        """The admin's headers and a person to @mention (created once per stack)."""
        if self._people is None:
            admin = await login(client, self.url("posts"), ADMIN["email"], ADMIN["password"])
            response = await client.post(f"{self.url('posts')}/api/v1/people", headers=admin, json={
                "email": "mentioned@chaos.local", "display_name": "Mentioned Person", "password": "chaos-password"})
            assert response.status_code == 201, response.text
            self._people = {"admin": admin, "mentioned": response.json()}
        return self._people


def _chaos_env(lease_seconds: float) -> dict[str, str]:
    return {"HEARTH_ENV": "test", "HEARTH_ADMIN_EMAIL": ADMIN["email"], "HEARTH_ADMIN_PASSWORD": ADMIN["password"],
            "HEARTH_DATABASE_POOL_SIZE": "5", "HEARTH_RELAY_LEASE_SECONDS": str(lease_seconds),
            "HEARTH_LOG_LEVEL": "WARNING"}


@contextmanager
def chaos_stack_running(workdir: Path | None = None, *, lease_seconds: float = LEASE_SECONDS):
    """Build the chaos stack, yield it, and tear everything down (extra replicas included)."""
    if workdir is None:
        with throwaway_dir("hearth-chaos-") as folder:
            with chaos_stack_running(folder, lease_seconds=lease_seconds) as stack:
                yield stack
        return
    postgres = EmbeddedPostgres(workdir / "pgdata", durable=False)
    broker = TansuBroker(log_file=workdir / "broker.log")
    stack = None
    try:
        server_url = postgres.start()
        prepare_databases(server_url, PREFIX)
        broker.start()
        prepare_topics(broker.bootstrap)
        processes = [p for p in service_processes(
            server_url=server_url, prefix=PREFIX, bootstrap=broker.bootstrap, key_file=signing_key_file(workdir),
            ports={s: free_port() for s in SERVICES}, log_dir=workdir, extra_env=_chaos_env(lease_seconds))
            if p.name in RUNNING]
        stack = ChaosStack(workdir, postgres, broker, processes)
        for p in processes:
            p.start()
        for p in processes:
            p.wait_healthy(timeout=90)
        yield stack
    finally:
        if stack is not None:
            for p in stack.processes + stack.extra:
                if p.process and p.process.poll() is None:
                    try:
                        os.kill(p.process.pid, signal.SIGCONT)  # a frozen process cannot drain
                    except ProcessLookupError:
                        pass
            stop_all(stack.processes + stack.extra)
        broker.stop()
        postgres.stop()


# --------------------------------------------------------------------------------------------- load

async def login(client: httpx.AsyncClient, posts_url: str, email: str, password: str) -> dict:
    response = await client.post(f"{posts_url}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}", "X-Hearth-Client": "api/chaos"}


class Writer:
    """Steady load: `rate` posts a second, each with an @mention, through posts' REST API.

    Records what was accepted (201) and every other answer; `edits` PATCHes each accepted post that many
    times (more events under the same key, for order checks). `url` may be switched while running."""

    def __init__(self, client: httpx.AsyncClient, url: str, people: dict, *, rate: float = 15.0, edits: int = 0,
                 max_in_flight: int = 30, tag: str = "chaos"):
        self.client, self.url, self.people, self.rate, self.edits = client, url, people, rate, edits
        self.max_in_flight, self.tag = max_in_flight, tag
        self.headers = people["admin"]
        self.accepted: dict[str, float] = {}  # post id -> wall-clock time of the 201
        self.statuses: Counter = Counter()  # status code (or exception name) -> count, creates and edits
        self.answers: list[tuple[float, object]] = []  # (time, status or exception name) of each create
        self.edits_accepted = 0
        self._seq = count(1)
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _relogin(self) -> None:
        self.headers = await login(self.client, self.url, ADMIN["email"], ADMIN["password"])

    async def _create(self, n: int) -> None:
        handle = self.people["mentioned"]["handle"]
        try:
            response = await self.client.post(f"{self.url}/api/v1/posts", headers=self.headers,
                                              json={"body": f"{self.tag} {n} for @{handle}"})
        except httpx.HTTPError as exc:
            self.statuses[type(exc).__name__] += 1
            self.answers.append((time.time(), type(exc).__name__))
            return
        self.statuses[response.status_code] += 1
        self.answers.append((time.time(), response.status_code))
        if response.status_code == 401:
            await self._relogin()
        if response.status_code != 201:
            return
        post_id = response.json()["id"]
        self.accepted[post_id] = time.time()
        for i in range(self.edits):
            try:
                edit = await self.client.patch(f"{self.url}/api/v1/posts/{post_id}", headers=self.headers,
                                               json={"body": f"{self.tag} {n} edit {i + 1} for @{handle}"})
                self.statuses[f"edit {edit.status_code}"] += 1
                self.edits_accepted += edit.status_code == 200
            except httpx.HTTPError as exc:
                self.statuses[f"edit {type(exc).__name__}"] += 1

    async def _run(self) -> None:
        tasks: set[asyncio.Task] = set()
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            if len(tasks) < self.max_in_flight:
                task = asyncio.create_task(self._create(next(self._seq)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def start(self) -> "Writer":
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task

    async def wait_accepted(self, more: int, *, timeout: float = 60.0) -> None:
        """Until `more` posts beyond the current count were accepted (bounded)."""
        target = len(self.accepted) + more
        await wait_for(lambda: _const(len(self.accepted) >= target), timeout=timeout,
                       message=f"{more} more accepted posts (statuses so far: {dict(self.statuses)})")

    def count_of(self, status) -> int:
        return self.statuses.get(status, 0)


@asynccontextmanager
async def writing(client: httpx.AsyncClient, stack: ChaosStack, **kwargs):
    people = await stack.people(client)
    writer = Writer(client, stack.url("posts"), people, **kwargs).start()
    try:
        yield writer
    finally:
        await writer.stop()


async def _const(value):
    return value


async def wait_for(predicate, *, timeout: float, message: str, interval: float = 0.2):
    """Poll an async predicate until it is truthy (returns its value); TimeoutError with `message` if never."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await predicate()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, httpx.HTTPError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}")
        await asyncio.sleep(interval)


# -------------------------------------------------------------------------------------------- ledger

@dataclass
class Ledger:
    accepted: int
    no_event: list[str] = field(default_factory=list)  # accepted posts without an outbox row (lost at the source)
    unpublished: int = 0  # outbox rows the relay has not marked published
    missing: dict[str, list[str]] = field(default_factory=dict)  # consumer -> event ids not applied
    effects_missing: dict[str, int] = field(default_factory=dict)  # effect rows absent although applied
    doubled: dict[str, list[str]] = field(default_factory=dict)  # consumer -> event ids with more than one effect
    worst_delay: dict[str, float] = field(default_factory=dict)  # consumer -> max(processed_at - outbox created_at)
    delays: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)  # consumer -> post id -> seconds

    @property
    def complete(self) -> bool:
        """Every accepted write applied by every consumer; nothing applied twice."""
        return not self.no_event and not any(self.missing.values()) and not any(self.doubled.values()) \
            and not any(self.effects_missing.values())

    @property
    def missing_count(self) -> int:
        return len(self.no_event) + sum(len(v) for v in self.missing.values())

    @property
    def doubled_count(self) -> int:
        return sum(len(v) for v in self.doubled.values())

    def summary(self) -> str:
        return (f"accepted={self.accepted} no_event={len(self.no_event)} unpublished={self.unpublished} "
                f"missing={ {c: len(v) for c, v in self.missing.items()} } "
                f"effects_missing={self.effects_missing} doubled={ {c: len(v) for c, v in self.doubled.items()} } "
                f"worst_delay_s={ {c: round(v, 3) for c, v in self.worst_delay.items()} }")


async def read_ledger(connect, post_ids) -> Ledger:
    """The ledger of `post_ids` (accepted posts) from the databases; `connect(service)` opens one."""
    post_ids = list(post_ids)
    ledger = Ledger(accepted=len(post_ids))
    posts = await connect("posts")
    try:
        rows = await posts.fetch(
            "SELECT key, event_id, created_at, published_at FROM outbox WHERE topic = 'social' AND key = ANY($1::text[]) "
            "AND convert_from(payload, 'UTF8')::jsonb ->> 'type' = $2", post_ids, POST_CREATED)
    finally:
        await posts.close()
    by_post = {r["key"]: r for r in rows}
    ledger.no_event = [p for p in post_ids if p not in by_post]
    ledger.unpublished = sum(1 for r in rows if r["published_at"] is None)
    post_of = {r["event_id"]: r["key"] for r in rows}
    event_ids = list(post_of)
    for service, consumer in CONSUMERS.items():
        conn = await connect(service)
        try:
            applied = {r["event_id"]: r["processed_at"] for r in await conn.fetch(
                "SELECT event_id, processed_at FROM processed_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
                consumer, event_ids)}
            effects = await _effect_counts(conn, service, post_of)
        finally:
            await conn.close()
        ledger.missing[consumer] = [str(e) for e in event_ids if e not in applied]
        delays = {post_of[e]: (at - by_post[post_of[e]]["created_at"]).total_seconds() for e, at in applied.items()}
        ledger.delays[consumer] = delays
        ledger.worst_delay[consumer] = max(delays.values(), default=0.0)
        if effects is not None:
            ledger.doubled[consumer] = [str(e) for e, n in effects.items() if n > 1]
            ledger.effects_missing[consumer] = sum(1 for e in applied if effects.get(e, 0) == 0)
    return ledger


async def _effect_counts(conn: asyncpg.Connection, service: str, post_of: dict) -> dict | None:
    """Effect rows per event id where a stable table shows them; None when the table is not there."""
    if service == "notifications" and await conn.fetchval("SELECT to_regclass('notifications') IS NOT NULL"):
        # One mentioned person per post: exactly one mention notification about each post.
        rows = await conn.fetch("SELECT subject_id::text AS post, count(*) AS n FROM notifications "
                                "WHERE kind = 'mention' AND subject_id = ANY($1::uuid[]) GROUP BY 1",
                                list(post_of.values()))
        counts = {r["post"]: r["n"] for r in rows}
        return {event_id: counts.get(post, 0) for event_id, post in post_of.items()}
    if service == "analytics" and await conn.fetchval("SELECT to_regclass('event_log') IS NOT NULL"):
        rows = await conn.fetch("SELECT event_id, count(*) AS n FROM event_log WHERE event_id = ANY($1::uuid[]) "
                                "GROUP BY 1", list(post_of))
        return {r["event_id"]: r["n"] for r in rows}
    return None


async def wait_ledger_complete(stack: ChaosStack, post_ids, *, timeout: float = 90.0) -> Ledger:
    """Poll the ledger until every accepted write is applied exactly once (bounded); the last ledger on
    timeout is in the error."""
    last: list[Ledger] = []

    async def complete():
        ledger = await read_ledger(stack.connect, post_ids)
        last[:] = [ledger]
        return ledger if ledger.complete else None

    try:
        return await wait_for(complete, timeout=timeout, message="every accepted post applied once by every consumer",
                              interval=0.5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last ledger: {last[0].summary() if last else 'unreadable'}") from None


# ----------------------------------------------------------------------------------- what else to see

class ReadyzWatcher:
    """Polls a service's /readyz during a fault: what it answered, and when."""

    def __init__(self, client: httpx.AsyncClient, url: str, interval: float = 0.2):
        self.client, self.url, self.interval = client, url, interval
        self.samples: list[tuple[float, object, dict]] = []  # (time, status or exception name, body)
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = await self.client.get(f"{self.url}/readyz", timeout=3)
                body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
                self.samples.append((time.time(), response.status_code, body))
            except httpx.HTTPError as exc:
                self.samples.append((time.time(), type(exc).__name__, {}))
            await asyncio.sleep(self.interval)

    def start(self) -> "ReadyzWatcher":
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> Counter:
        return Counter(s for t, s, _ in self.samples if since <= t <= until)

    def unready(self, since: float = 0.0, until: float = float("inf")) -> list[dict]:
        return [b for t, s, b in self.samples if since <= t <= until and s == 503]


async def read_from_start(bootstrap: str, topics: list[str], *, timeout: float = 30.0) -> list:
    """Every record the topics hold now, each partition in order: read up to the end offset the fetch
    responses report (Tansu answers ListOffsets LATEST wrongly), not until the topic looks quiet."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    records = []
    try:
        await consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return records
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while True:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
            ends = {tp: consumer.highwater(tp) for tp in partitions}
            if None not in ends.values() and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                return records
            if time.monotonic() > deadline:
                raise AssertionError(f"{topics} not read to their end in {timeout} s")
    finally:
        await consumer.stop()


async def dead_letters(bootstrap: str, topics: list[str] | None = None, *, timeout: float = 30.0) -> dict[str, list]:
    """What each dead-letter topic holds, read from the beginning: (event id or None, consumer header)."""
    topics = topics or [t + DLQ_SUFFIX for t in HearthSettings().topics]
    found: dict[str, list] = {t: [] for t in topics}
    for r in await read_from_start(bootstrap, topics, timeout=timeout):
        try:
            event_id = json.loads(r.value)["id"]
        except (ValueError, KeyError, TypeError):
            event_id = None
        headers = {k: v.decode(errors="replace") for k, v in (r.headers or ())}
        found[r.topic].append((event_id, headers.get("hearth-consumer")))
    return found


async def dead_lettered_metric(client: httpx.AsyncClient, urls: list[str]) -> float:
    """Sum of hearth_consumer_dead_lettered over the running services (since each started)."""
    total = 0.0
    for url in urls:
        text = (await client.get(f"{url}/metrics", timeout=5)).text
        for line in text.splitlines():
            if line.startswith("hearth_consumer_dead_lettered"):
                total += float(line.rsplit(" ", 1)[1])
    return total


async def read_keys_in_order(bootstrap: str, topic: str, keys: set[str], *, timeout: float = 30.0) -> dict[str, list]:
    """Event ids per key in the order a consumer reading `topic` from the beginning sees them."""
    seen: dict[str, list] = {}
    for r in await read_from_start(bootstrap, [topic], timeout=timeout):
        key = r.key.decode()
        if key in keys:
            seen.setdefault(key, []).append(json.loads(r.value)["id"])
    return seen


async def outbox_order(stack: ChaosStack, keys: set[str]) -> dict[str, list[str]]:
    """Event ids per key in outbox (commit) order: the order consumers must see them in."""
    conn = await stack.connect("posts")
    try:
        rows = await conn.fetch("SELECT key, event_id FROM outbox WHERE topic = 'social' AND key = ANY($1::text[]) "
                                "ORDER BY id", list(keys))
    finally:
        await conn.close()
    order: dict[str, list[str]] = {}
    for r in rows:
        order.setdefault(r["key"], []).append(str(r["event_id"]))
    return order


def first_occurrences(ids: list[str]) -> list[str]:
    seen, out = set(), []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out
