"""Transactional outbox: events are rows written with the state change, published by one relay.

`add_event` is the only way a service emits an event: it joins the caller's transaction, so the
event exists exactly when the state change does. `OutboxRelay` publishes pending rows in id order
(the per-aggregate order of the writes), marks them published and sleeps on LISTEN/NOTIFY.
"""

import asyncio
import zlib
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, MetaData, String, Table, Text, func, insert, text
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


async def add_event(session: AsyncSession, payload: EventData, *, subject: Any, actor: UUID | None = None,
                    client: str | None = None) -> Envelope:
    """Queue an event in the caller's transaction; it is published only if that transaction commits."""
    envelope = Envelope.wrap(payload, source=session.info["service"], subject=subject, actor=actor, client=client)
    await session.execute(insert(outbox_table).values(
        event_id=envelope.id, topic=payload.TOPIC, key=envelope.subject, payload=envelope.to_bytes()))
    # NOTIFY is delivered at commit (and folded when repeated), so the relay wakes only for committed rows.
    await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return envelope


def relay_lock_key(service: str) -> int:
    """A stable advisory-lock key per service: one active relay per database."""
    return zlib.crc32(f"hearth-outbox-relay:{service}".encode())


class OutboxRelay:
    """Publishes pending outbox rows; every replica runs one, the advisory lock lets one work."""

    def __init__(self, *, dsn: str, service: str, producer_factory, topic_map: dict[str, str],
                 batch_size: int = 500, poll_seconds: float = 1.0, retention: timedelta = timedelta(days=7)):
        self.dsn, self.service, self.producer_factory = dsn, service, producer_factory
        self.topic_map, self.batch_size, self.poll_seconds, self.retention = topic_map, batch_size, poll_seconds, retention
        self._wake = asyncio.Event()
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                await self._run_locked(stop)
                backoff = 0.2
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox relay lost its database connection", error=str(exc))
            if not stop.is_set():
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _run_locked(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", relay_lock_key(self.service)):
                if await _sleep_or_stop(stop, 2.0):  # another replica relays; stand by
                    return
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            await self._publish_loop(conn, stop)
        finally:
            await conn.close()

    async def _publish_loop(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        producer, backoff, last_purge = None, 0.2, 0.0
        try:
            while not stop.is_set():
                try:
                    if producer is None:
                        producer = await self._start_producer()
                    # Clear before reading: a NOTIFY for a row committed after the SELECT must wake us again.
                    self._wake.clear()
                    sent = await self._publish_batch(conn, producer)
                    backoff = 0.2
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    raise
                except Exception as exc:  # broker down or refusing: keep the rows, retry later
                    log.warning("outbox relay cannot publish; will retry", error=repr(exc), backoff=backoff)
                    if producer is not None:
                        await _stop_quietly(producer)
                        producer = None
                    await _sleep_or_stop(stop, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if sent < self.batch_size:
                    now = asyncio.get_running_loop().time()
                    if now - last_purge > 3600:
                        await conn.execute("DELETE FROM outbox WHERE published_at < now() - $1::interval", self.retention)
                        last_purge = now
                    await _wait_any(stop, self._wake, self.poll_seconds)
        finally:
            if producer is not None:
                await _stop_quietly(producer)

    async def _start_producer(self):
        producer = self.producer_factory()
        try:
            await producer.start()
        except Exception:
            await _stop_quietly(producer)
            raise
        return producer

    async def _publish_batch(self, conn: asyncpg.Connection, producer) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, key, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
            self.batch_size)
        if not rows:
            return 0
        # Sends are queued in order and awaited together: per-key order holds, round trips overlap.
        futures = [await producer.send(self.topic_map[r["topic"]], value=r["payload"], key=r["key"].encode())
                   for r in rows]
        await asyncio.gather(*futures)
        await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.published += len(rows)
        return len(rows)


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
