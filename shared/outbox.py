"""Transactional outbox: events are rows written with the state change, published by one relay.

`add_event` is the only way a service emits an event: it joins the caller's transaction, so the
event exists exactly when the state change does. `OutboxRelay` publishes pending rows in id order
(the per-aggregate order of the writes), marks them published and sleeps on LISTEN/NOTIFY.
"""

import asyncio
import os
import zlib
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy import (BigInteger, Column, DateTime, Index, LargeBinary, MetaData, String, Table, Text, bindparam, cast,
                        func, insert, literal, select, text, true)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import NAMING_CONVENTION
from shared.events import Envelope, EventData

log = structlog.get_logger("hearth.outbox")
NOTIFY_CHANNEL = "hearth_outbox"

# Infrastructure tables live in every service's database; each service's Alembic metadata includes these.
infra_metadata = MetaData(naming_convention=NAMING_CONVENTION)

outbox_table = Table(
    "outbox", infra_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", PG_UUID(as_uuid=True), nullable=False, unique=True),
    Column("topic", String(64), nullable=False),  # logical topic; the relay maps it to a configured name
    Column("key", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Index("ix_outbox_pending", "id", postgresql_where=text("published_at IS NULL")),
)

processed_events_table = Table(
    "processed_events", infra_metadata,
    Column("consumer", String(128), primary_key=True),
    Column("event_id", PG_UUID(as_uuid=True), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Revoked integrator API tokens (by `jti`), in every database so every service refuses them locally.
# A row can be purged once `expires_at` has passed: the token's signature no longer verifies by then.
revoked_tokens_table = Table(
    "revoked_tokens", infra_metadata,
    Column("jti", PG_UUID(as_uuid=True), primary_key=True),
    Column("revoked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


def _add_event_statement():
    """Built once: the row and the relay's wake-up (pg_notify in a CTE) in one round trip. The NOTIFY is
    delivered at commit (and folded when repeated), so the relay wakes only for committed rows."""
    notify = select(func.pg_notify(NOTIFY_CHANNEL, literal(""))).cte("notify")
    row = select(bindparam("o_event_id", type_=PG_UUID(as_uuid=True)), bindparam("o_topic", type_=String),
                 bindparam("o_key", type_=Text), bindparam("o_payload", type_=LargeBinary)).select_from(notify)
    return insert(outbox_table).from_select(["event_id", "topic", "key", "payload"], row)


_ADD_EVENT = _add_event_statement()


async def add_event(session: AsyncSession, payload: EventData, *, subject: Any, actor: UUID | None = None,
                    client: str | None = None) -> Envelope:
    """Queue an event in the caller's transaction; it is published only if that transaction commits."""
    envelope = Envelope.wrap(payload, source=session.info["service"], subject=subject, actor=actor, client=client)
    connection = await session.connection()  # the session's transaction; a Core statement needs no ORM layer
    await connection.execute(_ADD_EVENT, {"o_event_id": envelope.id, "o_topic": payload.TOPIC,
                                          "o_key": envelope.subject, "o_payload": envelope.to_bytes()})
    return envelope


def add_event_cte(source, *, payload_json=None, name: str = "event"):
    """`add_event` as a CTE of the caller's own statement (a change and its event in one statement, which
    in autocommit is its own transaction): an outbox row if `source` selects a row (nothing: no event),
    with the relay's wake-up. The values are parameters, `event_params(envelope, payload)`; `payload_json`
    is a JSONB expression of the whole envelope when the statement fills something in (e.g.
    ``jsonb_set(<the envelope>, '{data,recipients}', ...)``), else the row holds `Envelope.to_bytes()`.
    Add the returned CTE to the statement (`.add_cte(...)`): PostgreSQL runs it even when nothing reads it."""
    notify = select(func.pg_notify(NOTIFY_CHANNEL, literal("")).label("notified")).cte(f"{name}_notify")
    body = bindparam("o_payload", type_=LargeBinary) if payload_json is None else \
        func.convert_to(cast(payload_json, Text), literal("UTF8"))
    row = select(bindparam("o_event_id", type_=PG_UUID(as_uuid=True)), bindparam("o_topic", type_=String),
                 bindparam("o_key", type_=Text), body).select_from(source).join(notify, true()).limit(1)
    return insert(outbox_table).from_select(["event_id", "topic", "key", "payload"], row).cte(name)


def event_params(envelope: Envelope, payload: EventData, *, with_bytes: bool = True) -> dict[str, Any]:
    """The parameters of `add_event_cte` for this envelope."""
    params = {"o_event_id": envelope.id, "o_topic": payload.TOPIC, "o_key": envelope.subject}
    if with_bytes:
        params["o_payload"] = envelope.to_bytes()
    return params


async def add_events(session: AsyncSession, payloads: list[tuple[EventData, Any]], *, actor: UUID | None = None,
                     client: str | None = None) -> list[Envelope]:
    """`add_event` for many (payload, subject) pairs: one NOTIFY and a fixed number of INSERTs, not one each."""
    if not payloads:
        return []
    source = session.info["service"]
    envelopes = [Envelope.wrap(p, source=source, subject=subject, actor=actor, client=client)
                 for p, subject in payloads]
    # An executemany: SQLAlchemy sends it as multi-row INSERTs of up to 1,000 rows (below PostgreSQL's
    # parameter limit), the rows numbered in list order, which is the order the relay publishes them in.
    await session.execute(insert(outbox_table), [
        {"event_id": e.id, "topic": p.TOPIC, "key": e.subject, "payload": e.to_bytes()}
        for e, (p, _) in zip(envelopes, payloads)])
    await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return envelopes


def relay_lock_key(service: str) -> int:
    """A stable advisory-lock key per service: one active relay per database."""
    return zlib.crc32(f"hearth-outbox-relay:{service}".encode())


_MARK = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"
# $3: the ids not to read again - those marked here ($1) and those sent but not yet acked.
_MARK_AND_SELECT = (
    f"WITH marked AS ({_MARK}) "
    "SELECT id, topic, key, payload FROM outbox WHERE published_at IS NULL AND NOT id = ANY($3::bigint[]) "
    "ORDER BY id LIMIT $2")


class LeaseLost(Exception):
    """The relay's lock session is gone (frozen or cut off long enough): stop publishing at once."""


class OutboxRelay:
    """Publishes pending outbox rows; every replica runs one, and the one holding the lease works.

    The lease is a session advisory lock held on a connection of its own with `idle_session_timeout`:
    the holder pings it every second, so a holder that freezes (SIGSTOP, a stuck host) loses its
    session - and the lock - within `lease_seconds`, and a standby takes over. A resumed old holder
    checks the lease before each batch, so at most the batch it was holding goes out twice (consumers
    dedupe), never a batch after the new holder's.
    """

    def __init__(self, *, dsn: str, service: str, producer_factory, topic_map: dict[str, str],
                 batch_size: int = 500, poll_seconds: float = 1.0, retention: timedelta = timedelta(days=7),
                 processed_retention: timedelta = timedelta(days=14), lease_seconds: float = 5.0,
                 flush_seconds: float = 5.0):
        self.dsn, self.service, self.producer_factory = dsn, service, producer_factory
        self.topic_map, self.batch_size, self.poll_seconds, self.retention = topic_map, batch_size, poll_seconds, retention
        self.processed_retention, self.lease_seconds, self.flush_seconds = processed_retention, lease_seconds, flush_seconds
        self._wake = asyncio.Event()
        self._acked: list[int] = []  # ids published (acked by the broker) but not yet marked so
        self._next: list | None = None  # rows read while the previous batch was being acked, sent next
        self.published = 0
        self.pending = 0
        self.oldest_pending_seconds = 0.0
        self.holding_lease = False

    def metrics(self) -> dict[str, float]:
        return {"published": self.published, "pending": self.pending,
                "oldest_pending_seconds": self.oldest_pending_seconds, "holding_lease": int(self.holding_lease)}

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                await self._run_with_lease(stop)
                backoff = 0.2
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, LeaseLost, TimeoutError) as exc:
                log.warning("outbox relay lost its database connection or lease", error=repr(exc))
            finally:
                self.holding_lease = False
            if not stop.is_set():
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _connect(self, role: str) -> asyncpg.Connection:
        settings = {"application_name": f"hearth-relay:{self.service}:{role}:{os.getpid()}"}
        if role == "lease":
            settings["idle_session_timeout"] = str(int(self.lease_seconds * 1000))
        else:
            # Marking rows published need not wait for the disk: a mark lost in a crash only re-sends
            # those rows (consumers dedupe), and the message commits keep the WAL flushes to themselves.
            settings["synchronous_commit"] = "off"
        return await asyncio.wait_for(asyncpg.connect(self.dsn, server_settings=settings), timeout=10)

    async def _run_with_lease(self, stop: asyncio.Event) -> None:
        lease = await self._connect("lease")
        conn = None
        try:
            while not await self._try_lock(lease):
                await self._measure(lease)  # standbys report the backlog too
                if await _sleep_or_stop(stop, 1.0):  # another replica relays; stand by
                    return
            self.holding_lease = True
            log.info("outbox relay holds the lease", service=self.service)
            conn = await self._connect("work")
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            guard = _LeaseGuard(lease, timeout=self.lease_seconds)
            heartbeat = asyncio.create_task(guard.keep_alive(stop))
            try:
                await self._publish_loop(conn, guard, stop)
            finally:
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)
        finally:
            for c in (conn, lease):
                if c is not None:
                    await _close_quietly(c)

    async def _try_lock(self, lease: asyncpg.Connection) -> bool:
        return await lease.fetchval("SELECT pg_try_advisory_lock($1)", relay_lock_key(self.service))

    async def _measure(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow("SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age "
                                  "FROM outbox WHERE published_at IS NULL")
        self.pending, self.oldest_pending_seconds = row["n"], float(row["age"] or 0.0)

    async def _publish_loop(self, conn: asyncpg.Connection, guard: "_LeaseGuard", stop: asyncio.Event) -> None:
        producer, backoff, last_purge, last_measure = None, 0.2, 0.0, 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                if guard.lost is not None:
                    raise LeaseLost(repr(guard.lost))
                try:
                    if producer is None:
                        producer = await self._start_producer()
                    sent = await self._publish_batch(conn, producer, guard)
                    backoff = 0.2
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, LeaseLost):
                    raise
                except Exception as exc:  # broker down or refusing: keep the rows, retry later
                    log.warning("outbox relay cannot publish; will retry", error=repr(exc), backoff=backoff)
                    self._next = None  # read again after the failed batch, in id order
                    producer = await self._drop_producer(producer)
                    await _sleep_or_stop(stop, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                now = loop.time()
                if now - last_measure > 1.0:
                    await self._measure(conn)
                    last_measure = now
                if sent < self.batch_size and self._next is None:
                    if now - last_purge > 3600:
                        await self._purge(conn)
                        last_purge = now
                    await _wait_any(stop, self._wake, self.poll_seconds)
            if producer is not None:
                await self._flush(conn, producer, guard)
        finally:
            await self._mark_acked_quietly(conn)
            await self._drop_producer(producer)

    async def _flush(self, conn: asyncpg.Connection, producer, guard: "_LeaseGuard") -> None:
        """On shutdown, publish what is pending (bounded) so a stop loses no time for consumers."""
        deadline = asyncio.get_running_loop().time() + self.flush_seconds
        try:
            while asyncio.get_running_loop().time() < deadline:
                if await asyncio.wait_for(self._publish_batch(conn, producer, guard), timeout=self.flush_seconds) == 0:
                    return
        except Exception as exc:  # the rows stay pending; the next holder publishes them
            log.warning("outbox relay could not flush before stopping", error=repr(exc))

    async def _purge(self, conn: asyncpg.Connection) -> None:
        """Housekeeping, done by the lease holder only: one job per database."""
        await conn.execute("DELETE FROM outbox WHERE published_at < now() - $1::interval", self.retention)
        await conn.execute("DELETE FROM processed_events WHERE processed_at < now() - $1::interval",
                           self.processed_retention)
        await conn.execute("DELETE FROM revoked_tokens WHERE expires_at < now()")

    async def _start_producer(self):
        producer = self.producer_factory()
        try:
            await producer.start()
        except Exception:
            await _stop_quietly(producer)
            raise
        return producer

    async def _drop_producer(self, producer) -> None:
        if producer is not None:
            await _stop_quietly(producer)
        return None

    async def _read(self, conn: asyncpg.Connection, in_flight: list[int] = ()) -> list:
        """Marks the acked batch published and reads the next rows in ONE round trip: the statement's SELECT
        sees the rows as they were before its UPDATE, hence the exclusion (of those sent, too)."""
        marking = self._acked
        rows = await conn.fetch(_MARK_AND_SELECT, marking, self.batch_size, marking + list(in_flight))
        self._acked = []
        return rows

    async def _publish_batch(self, conn: asyncpg.Connection, producer, guard: "_LeaseGuard") -> int:
        rows, self._next = self._next, None
        if rows is None:
            # Clear before reading: a NOTIFY for a row committed after the SELECT must wake us again.
            self._wake.clear()
            rows = await self._read(conn)
        if not rows:
            return 0
        await guard.check()  # a holder that was frozen finds out here, before sending anything
        # Sends are queued in order and awaited together: per-key order holds, round trips overlap.
        futures = [await producer.send(self.topic_map[r["topic"]], value=r["payload"], key=r["key"].encode())
                   for r in rows]
        ids = [r["id"] for r in rows]
        acks = asyncio.gather(*futures)
        try:
            # Rows committed while the broker acks are read meanwhile, so they go out as soon as this batch
            # is acked instead of a database round trip later. They are only read, not sent: a batch is
            # handed to the producer after the one before it is acked, so a failed batch is published
            # again (with whatever was read after it) before anything that came after it - per-key order.
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([acks, woken], return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
            following = None
            if not acks.done():
                self._wake.clear()  # (before the read, as above)
                following = await self._read(conn, in_flight=ids)
            await acks
        except BaseException:
            acks.add_done_callback(_retrieve)  # a read that failed leaves the acks unawaited
            raise
        self._acked += ids  # (a prefetched batch went out unread: the marks of the one before it still wait)
        self._next = following or None
        self.published += len(rows)
        if self._next is None and not self._wake.is_set():
            # Nothing new is waiting: mark now (metrics and the launcher's re-publishing read the marks).
            # When rows are waiting, the next batch's read marks these in the same round trip.
            await self._mark_acked(conn)
        return len(rows)

    async def _mark_acked(self, conn: asyncpg.Connection) -> None:
        if self._acked:
            await conn.execute(_MARK, self._acked)
            self._acked = []

    async def _mark_acked_quietly(self, conn: asyncpg.Connection) -> None:
        """On the way out (a stop, a lost lease or connection): rows left unmarked are published again by
        the next holder, which consumers absorb, so a failure here only costs duplicates."""
        try:
            await asyncio.wait_for(self._mark_acked(conn), timeout=2)
        except Exception as exc:
            log.info("outbox relay could not mark its last batch published", error=repr(exc))
        finally:
            self._acked = []


class _LeaseGuard:
    """Keeps the lease session busy (so idle_session_timeout spares it) and checks it on demand."""

    def __init__(self, conn: asyncpg.Connection, *, timeout: float):
        # A ping that times out leaves the connection mid-operation and unusable, so give it as long
        # as the lease itself: a slower answer than that means the session is as good as gone anyway.
        self.conn, self.timeout = conn, timeout
        self.lock = asyncio.Lock()
        self.lost: BaseException | None = None
        self.confirmed_at = float("-inf")  # (loop time) when the last successful ping was sent

    async def ping(self) -> None:
        async with self.lock:
            sent_at = asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self.conn.fetchval("SELECT 1"), timeout=self.timeout)
            except Exception as exc:
                self.lost = exc
                raise LeaseLost(repr(exc)) from exc
            self.confirmed_at = sent_at

    async def check(self) -> None:
        """Before a batch: the lease still held. The session's idle timer restarted after the last ping was
        sent, so within half the lease of that no round trip is needed (the keep-alive pings every second);
        a holder that was frozen finds its last ping old (the monotonic clock ran on) and pings."""
        if self.lost is not None:
            raise LeaseLost(repr(self.lost))
        if asyncio.get_running_loop().time() - self.confirmed_at >= self.timeout / 2:
            await self.ping()

    async def keep_alive(self, stop: asyncio.Event) -> None:
        while not stop.is_set() and self.lost is None:
            try:
                await self.ping()
            except LeaseLost:
                log.warning("outbox relay lease lost")
                return
            await _sleep_or_stop(stop, 1.0)


async def _close_quietly(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), timeout=2)
    except Exception:
        conn.terminate()


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


async def _stop_quietly(producer) -> None:
    try:
        await producer.stop()
    except Exception:  # a producer that never connected may fail to stop; nothing to flush
        pass


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, returning early (True) when asked to stop."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
        return True
    except TimeoutError:
        return False
