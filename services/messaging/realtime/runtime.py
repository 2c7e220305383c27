"""What each replica runs for the socket: the hub, the fan-out reader, presence upkeep and frame purging."""

import asyncio
from contextlib import asynccontextmanager
from uuid import UUID

import structlog
from fastapi import FastAPI
from sqlalchemy import select
from uuid6 import uuid7

from services.messaging.config import Settings
from services.messaging.realtime import presence
from services.messaging.realtime.models import frames
from shared.events import Envelope
from shared.fanout import FanoutReader
from shared.kafka import make_producer
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
    """Wrap the app's lifespan: the hub exists once the database does; background work only when enabled."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with inner(app) as state:
            hub = Hub(tables=frames, sessionmaker=app.state.sessionmaker, settings=settings.realtime)
            watchers: dict[UUID, set[Connection]] = {}
            app.state.hub, app.state.presence_watchers = hub, watchers
            hub.on_connect.append(lambda conn: _connected(app, conn))
            hub.on_disconnect.append(lambda conn: _disconnected(app, conn))
            stop, tasks = asyncio.Event(), []
            if settings.run_background:
                app.state.fanout = reader = FanoutReader(
                    name="messaging.fanout", topics=[settings.topic_messaging], deliver=make_deliver(hub, watchers),
                    settings=settings, on_start=lambda: hub.wake(list(hub.connections)))
                tasks += [asyncio.create_task(reader.run(stop), name="messaging-fanout"),
                          asyncio.create_task(purge_loop(frames, app.state.sessionmaker, settings.realtime, stop)),
                          asyncio.create_task(_presence_heartbeat(app, hub, stop)),
                          asyncio.create_task(_start_producer(app, settings, stop))]
            try:
                yield state
            finally:
                for conns in list(hub.connections.values()):
                    for conn in list(conns):
                        conn.close(CLOSE_GOING_AWAY, "server shutting down")
                await asyncio.sleep(0.1)  # let the sockets send their close frames
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                producer = getattr(app.state, "ephemeral_producer", None)
                if producer is not None:
                    await producer.stop()

    app.router.lifespan_context = lifespan


async def _start_producer(app: FastAPI, settings: Settings, stop: asyncio.Event) -> None:
    """The producer for ephemeral frames (typing); retried until the broker answers."""
    backoff = 0.2
    while not stop.is_set():
        producer = make_producer(settings, acks=1)
        try:
            await producer.start()
            app.state.ephemeral_producer = producer
            return
        except Exception as exc:
            log.warning("ephemeral producer cannot start; retrying", error=repr(exc))
            await producer.stop()
            try:
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, 5.0)


async def _connected(app: FastAPI, conn: Connection) -> None:
    conn.state["connection_id"] = uuid7()
    conn.state["status"] = "online"
    async with app.state.sessionmaker() as session:
        await presence.set_connection(session, connection_id=conn.state["connection_id"], person_id=conn.person_id,
                                      status="online")


async def _disconnected(app: FastAPI, conn: Connection) -> None:
    for person_id in conn.state.get("watching", set()):
        app.state.presence_watchers.get(person_id, set()).discard(conn)
    if "connection_id" in conn.state:
        async with app.state.sessionmaker() as session:
            await presence.set_connection(session, connection_id=conn.state["connection_id"],
                                          person_id=conn.person_id, status=None)


async def _presence_heartbeat(app: FastAPI, hub: Hub, stop: asyncio.Event) -> None:
    """Keep this replica's connections fresh, so a crashed replica's rows age out of presence."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=presence.HEARTBEAT.total_seconds())
        except TimeoutError:
            pass
        ids = [c.state["connection_id"] for conns in hub.connections.values() for c in conns
               if "connection_id" in c.state]
        try:
            async with app.state.sessionmaker() as session:
                await presence.touch(session, ids)
                # People deactivated since they connected lose their sockets (new ones are refused at hello).
                gone = await session.scalars(select(directory_people.c.id).where(
                    directory_people.c.id.in_(list(hub.connections)), directory_people.c.active.is_(False)))
                for person_id in gone:
                    hub.close_person(person_id, CLOSE_FORBIDDEN, "deactivated")
        except Exception as exc:
            log.warning("presence heartbeat failed", error=repr(exc))
