"""What each replica runs for the socket: the hub, the fan-out reader, presence upkeep and frame purging."""

import asyncio
from contextlib import asynccontextmanager
from itertools import islice
from uuid import UUID

import asyncpg
import structlog
from fastapi import FastAPI
from sqlalchemy import any_, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid6 import uuid7

from services.messaging.config import Settings
from services.messaging.realtime import presence
from services.messaging.realtime.models import frames
from shared.events import Envelope
from shared.fanout import FanoutReader
from shared.kafka import make_producer
from shared.db import make_engine, make_sessionmaker, unit_of_work
from shared.directory import directory_people
from shared.realtime import CLOSE_FORBIDDEN, CLOSE_GOING_AWAY, Connection, Hub, purge_loop

log = structlog.get_logger("hearth.messaging.realtime")


def make_deliver(hub: Hub, watchers: dict[UUID, set[Connection]]):
    async def deliver(envelope: Envelope) -> None:
        data = envelope.data
        recipients = [UUID(r) for r in data.get("recipients", [])]
        if envelope.type == "hearth.conversation.typing":
            hub.send_ephemeral(recipients, "typing", {k: data[k] for k in ("conversation_id", "person_id", "typing")})
        elif envelope.type == "hearth.presence.changed":
            frame = {"type": "presence", "data": {"person_id": data["person_id"], "status": data["status"]}}
            for conn in list(watchers.get(UUID(data["person_id"]), ())):
                conn.push(frame)
        else:
            hub.wake(recipients)

    return deliver


def install(app: FastAPI, settings: Settings) -> None:
    """The hub at start-up, its background work under `app.state.supervisor`, its sockets closed at shutdown."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with inner(app) as state:
            try:
                yield state
            finally:
                hub: Hub | None = getattr(app.state, "hub", None)
                for conns in list(hub.connections.values()) if hub else ():
                    for conn in list(conns):
                        conn.close(CLOSE_GOING_AWAY, "server shutting down")
                await asyncio.sleep(0.1)  # let the sockets send their close frames
            # (leaving `inner` stops the supervisor: presence clears this replica's rows, the producer stops)
        for name in ("frame_read_engine", "socket_engine"):
            engine = getattr(app.state, name, None)
            if engine is not None:  # absent when start-up failed before the hook
                await engine.dispose()
        pool = getattr(app.state, "send_pool", None)
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except Exception:
                pool.terminate()

    app.router.lifespan_context = lifespan


def hot_engine(settings: Settings, *, pool_size: int) -> AsyncEngine:
    """An engine for the per-message paths (socket frames, frame reads), apart from the request pool so a
    burst of one cannot starve the other. Like every engine it pings only connections that sat idle
    (shared.db.make_engine): under load a frame's work starts without the ping's three round trips."""
    # No overflow: connections opened beyond the pool are closed again on return, and under load that
    # is a connect (and prepared statements) per frame; waiting for a pooled one is the back-pressure.
    return make_engine(settings.service_database_url, pool_size=pool_size, max_overflow=0)


async def _no_reset(connection) -> None:
    """asyncpg's default reset is a round trip per release (UNLISTEN, RESET ALL, ...): nothing to undo here."""


def startup(settings: Settings):
    """A start-up hook (runs before the supervisor starts): the hub, presence and their supervised jobs."""
    async def hook(app: FastAPI) -> None:
        # Frame reads get connections of their own: a burst of writes must not starve delivery.
        app.state.frame_read_engine = read_engine = hot_engine(settings, pool_size=2)
        # Socket frames (each its own unit of work) too, so that their checkouts skip the ping.
        app.state.socket_engine = socket_engine = hot_engine(settings, pool_size=max(2, settings.database_pool_size // 2))
        app.state.socket_sessionmaker = make_sessionmaker(socket_engine, service=settings.service_name)
        # Plain sends (one statement each, messages.send_plain) straight on asyncpg's own pool: no
        # SQLAlchemy connection objects and no reset query per use (nothing they run leaves state behind:
        # autocommit statements, no SET/LISTEN). Connections are opened on first use and kept: an inactivity
        # timeout is a timer re-armed on every release (~2% of a replica's CPU under chat load in py-spy).
        app.state.send_pool = await asyncpg.create_pool(
            settings.service_database_url.replace("postgresql+asyncpg://", "postgresql://", 1), min_size=0,
            max_size=max(2, settings.database_pool_size // 2), reset=_no_reset, max_inactive_connection_lifetime=0,
            server_settings={"application_name": f"hearth-{settings.service_name}:sends"})
        hub = Hub(tables=frames, sessionmaker=make_sessionmaker(read_engine, service=settings.service_name),
                  settings=settings.realtime)
        watchers: dict[UUID, set[Connection]] = {}
        app.state.hub, app.state.presence_watchers = hub, watchers
        app.state.presence = tracker = PresenceTracker(app, hub)
        app.state.ephemeral_producer = None
        hub.on_connect.append(tracker.connected)
        hub.on_disconnect.append(tracker.disconnected)
        if not settings.run_background:
            return
        supervisor = app.state.supervisor
        fanout_settings = settings if settings.messaging_fanout_fetch_max_wait_ms is None else settings.model_copy(
            update={"kafka_fetch_max_wait_ms": settings.messaging_fanout_fetch_max_wait_ms})
        app.state.fanout = reader = FanoutReader(
            name="messaging.fanout", topics=[settings.topic_messaging], deliver=make_deliver(hub, watchers),
            settings=fanout_settings, on_start=lambda: hub.wake(list(hub.connections)))
        supervisor.add(reader.name, reader.run, kind="fanout", source=reader)
        supervisor.add("messaging.presence", tracker.run)
        supervisor.add("messaging.frame-purge", lambda stop: purge_loop(frames, app.state.sessionmaker,
                                                                        settings.realtime, stop))
        supervisor.add("messaging.ephemeral-producer", lambda stop: run_ephemeral_producer(app, settings, stop))
    return hook


async def run_ephemeral_producer(app: FastAPI, settings: Settings, stop: asyncio.Event) -> None:
    """The producer for ephemeral frames (typing), held until the service stops; a failed start is retried
    by the supervisor. While it is down, typing frames are dropped (they are never stored)."""
    producer = make_producer(settings, acks=1)
    try:
        await producer.start()
        app.state.ephemeral_producer = producer
        await stop.wait()
    finally:
        app.state.ephemeral_producer = None
        await producer.stop()


class PresenceTracker:
    """This replica's presence: changes are marked as sockets come, go or change status, and written
    once a second in one transaction; every HEARTBEAT the rows are refreshed and deactivated people's
    sockets are closed."""

    def __init__(self, app: FastAPI, hub: Hub, flush_seconds: float = 1.0, chunk: int = 1000):
        self.app, self.hub, self.flush_seconds, self.chunk = app, hub, flush_seconds, chunk
        self.replica_id = uuid7()
        self.dirty: set[UUID] = set()
        self.wake = asyncio.Event()

    async def connected(self, conn: Connection) -> None:
        conn.state["status"] = "online"
        self.mark(conn.person_id)

    async def disconnected(self, conn: Connection) -> None:
        for person_id in conn.state.get("watching", set()):
            self.app.state.presence_watchers.get(person_id, set()).discard(conn)
        self.mark(conn.person_id)

    def mark(self, person_id: UUID) -> None:
        self.dirty.add(person_id)
        self.wake.set()

    def local_status(self, person_id: UUID) -> str:
        return presence.best(c.state.get("status") for c in self.hub.local(person_id))

    async def run(self, stop: asyncio.Event) -> None:
        last_beat = asyncio.get_running_loop().time()
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=self.flush_seconds)
            except TimeoutError:
                pass
            await asyncio.sleep(self.flush_seconds)  # gather a second's worth of changes
            self.wake.clear()
            while self.dirty:
                # Bounded transactions (a burst of 10,000 connects is ten of them, within the parameter limit).
                people = set(islice(self.dirty, self.chunk))
                self.dirty -= people
                try:
                    # A background job owns its session: committed here, at the end of each chunk.
                    async with unit_of_work(self.app.state.sessionmaker) as session:
                        await presence.apply(session, replica_id=self.replica_id,
                                             local={p: self.local_status(p) for p in people})
                except BaseException:  # keep the changes for the next run (the supervisor restarts this one)
                    self.dirty |= people
                    raise
            now = asyncio.get_running_loop().time()
            if now - last_beat > presence.HEARTBEAT.total_seconds():
                last_beat = now
                await self._heartbeat()
        await self._final()

    async def _heartbeat(self) -> None:
        async with unit_of_work(self.app.state.sessionmaker) as session:  # the job's own, committed at the end
            await presence.touch(session, replica_id=self.replica_id, person_ids=list(self.hub.connections))
            # People deactivated since they connected lose their sockets (new ones are refused at hello).
            here = literal(list(self.hub.connections), ARRAY(PG_UUID(as_uuid=True)))
            gone = await session.scalars(select(directory_people.c.id).where(
                directory_people.c.id == any_(here), directory_people.c.active.is_(False)))
            for person_id in gone:
                self.hub.close_person(person_id, CLOSE_FORBIDDEN, "deactivated")

    async def _final(self) -> None:
        """On shutdown: this replica's people go offline here (their other replicas keep theirs)."""
        people = list(self.dirty | set(self.hub.connections))
        try:
            for start in range(0, len(people), self.chunk):
                async with unit_of_work(self.app.state.sessionmaker) as session:  # the job's own session
                    await presence.apply(session, replica_id=self.replica_id,
                                         local={p: "offline" for p in people[start:start + self.chunk]})
        except Exception as exc:
            log.warning("presence could not be cleared on shutdown", error=repr(exc))
