"""The notification socket's machinery on each replica: the hub, fan-out readers and frame purging.

Stored frames (new notifications, badge counts) are written with the notification itself; the
notifications.v1 delivery/read events only wake the recipients' sockets, wherever they are connected,
to read those frames from the database (shared/realtime.py). "New posts" hints are ephemeral: every
replica reads social.v1 and tells the sockets it holds that a feed has something new.
"""

import asyncio
import time
from uuid import UUID

import structlog
from fastapi import FastAPI
from sqlalchemy import select, text

from services.notifications.audience.models import GroupMember
from services.notifications.config import Settings
from services.notifications.db import frames
from services.notifications.inbox import service as inbox
from shared.directory import directory_people
from shared.events import Envelope
from shared.fanout import FanoutReader
from shared.realtime import Connection, Hub, purge_loop

HINT_FRAME = "feed.new_posts"
log = structlog.get_logger("hearth.notifications.realtime")


class FramePrefetch:
    """The frame tables, plus one read for all of a delivery's locally connected recipients.

    An announcement wakes 1,000 sockets on a replica; each would read its frames with a query of its
    own. `prime` reads them all in one query just before the wake, and `read` (what each socket's
    catch-up calls) answers from that when it can: stored frames never change, and an entry covers
    every frame after `after` that existed when it was read. Anything else (an older resume point,
    an entry older than `ttl`, a person who (re)connected since) goes to the database as before."""

    PER_PERSON = 200

    def __init__(self, tables, ttl: float = 2.0):
        self.tables, self.ttl = tables, ttl
        self.entries: dict[UUID, tuple[float, int, list[dict]]] = {}

    def __getattr__(self, name):  # append, last_seq, can_resume, purge, the tables themselves
        return getattr(self.tables, name)

    async def prime(self, sessionmaker, hub: Hub, people) -> None:
        local = {p: min(c.sent_seq for c in hub.local(p)) for p in people if hub.local(p)}
        if not local:
            return
        f = self.tables.frames.name
        async with sessionmaker() as session:
            rows = await session.execute(text(f"""
                SELECT a.person_id, x.seq, x.kind, x.data
                FROM unnest(CAST(:people AS uuid[]), CAST(:afters AS bigint[])) AS a(person_id, after)
                CROSS JOIN LATERAL (SELECT seq, kind, data FROM {f} WHERE {f}.person_id = a.person_id
                                    AND {f}.seq > a.after ORDER BY seq LIMIT {self.PER_PERSON}) AS x
                ORDER BY a.person_id, x.seq"""), {"people": list(local), "afters": list(local.values())})
            found: dict[UUID, list[dict]] = {p: [] for p in local}
            for r in rows:
                found[r.person_id].append({"type": r.kind, "seq": r.seq, "data": r.data})
        now = time.monotonic()
        for person, frames_ in found.items():
            if len(frames_) < self.PER_PERSON:  # complete: safe to answer from
                self.entries[person] = (now, local[person], frames_)
        if len(self.entries) > 50_000:
            self.entries = {p: e for p, e in self.entries.items() if now - e[0] < self.ttl}

    def forget(self, person_id: UUID) -> None:
        self.entries.pop(person_id, None)

    async def read(self, session, *, person_id: UUID, after: int, limit: int = 200) -> list[dict]:
        entry = self.entries.get(person_id)
        if entry is not None and time.monotonic() - entry[0] < self.ttl and entry[1] <= after:
            return [f for f in entry[2] if f["seq"] > after][:limit]
        return await self.tables.read(session, person_id=person_id, after=after, limit=limit)


async def wake_people(hub: Hub, prefetch: FramePrefetch, sessionmaker, people: list[UUID]) -> None:
    try:
        await prefetch.prime(sessionmaker, hub, people)
    except Exception as exc:  # the sockets read for themselves then
        log.warning("frame prefetch failed", error=repr(exc))
    hub.wake(people)


def wake_recipients(hub: Hub, prefetch: FramePrefetch, sessionmaker, woken_here: dict | None = None):
    async def deliver(envelope: Envelope) -> None:
        if woken_here is not None and envelope.id in woken_here:
            del woken_here[envelope.id]
            return  # this replica woke them right after its own commit (a second prime + wake would only cost)
        data = envelope.data
        people = [UUID(p) for p in (data.get("recipients") or ([data["person_id"]] if data.get("person_id") else []))]
        await wake_people(hub, prefetch, sessionmaker, people)
    return deliver


def new_post_hints(hub: Hub, sessionmaker):
    """Tell connected readers that a feed has new posts; no post id travels, so nothing unreadable leaks."""
    async def deliver(envelope: Envelope) -> None:
        if envelope.type != "hearth.post.created" or not hub.connections:
            return
        data = envelope.data
        author = UUID(data["author_id"])
        async with sessionmaker() as session:
            protected = await session.scalar(select(directory_people.c.protected)
                                             .where(directory_people.c.id == author))
            if protected or data["audience"] == "followers":
                return  # only the author's followers may read it; there is no follower read model here
            if data["audience"] == "group":
                connected = list(hub.connections)
                people = list(await session.scalars(select(GroupMember.person_id).where(
                    GroupMember.group_id == UUID(data["group_id"]), GroupMember.person_id.in_(connected))))
                hint = {"feed": "group", "group_id": data["group_id"]}
            else:
                people, hint = list(hub.connections), {"feed": "company"}
        hub.send_ephemeral([p for p in people if p != author], HINT_FRAME, hint)
    return deliver


async def send_badge(app: FastAPI, conn: Connection) -> None:
    async with app.state.sessionmaker() as session:
        unread = await inbox.unread_count(session, recipient_id=conn.person_id)
    conn.push({"type": inbox.BADGE_FRAME, "data": {"unread": unread}})


def install(settings: Settings):
    """A start-up hook: the hub, and (with background work on) its supervised readers and purge."""
    async def hook(app: FastAPI) -> None:
        prefetch = FramePrefetch(frames)
        hub = Hub(tables=prefetch, sessionmaker=app.state.sessionmaker)
        app.state.hub = hub

        async def connected(conn: Connection) -> None:
            prefetch.forget(conn.person_id)
            await send_badge(app, conn)

        async def disconnected(conn: Connection) -> None:
            prefetch.forget(conn.person_id)

        hub.on_connect.append(connected)
        hub.on_disconnect.append(disconnected)
        if not settings.run_background:
            return
        supervisor = app.state.supervisor
        woken_here: dict[UUID, None] = {}  # delivery events whose recipients this replica woke already, oldest first
        wake = wake_recipients(hub, prefetch, app.state.sessionmaker, woken_here)
        pending: set[asyncio.Task] = set()

        def wake_local(people: list[UUID], event_ids: list[UUID] = ()) -> None:
            # Right after the consumer's commit; the delivery events wake the other replicas.
            woken_here.update(dict.fromkeys(event_ids))
            while len(woken_here) > 10_000:  # events that never came back (broker lost them): forget the oldest
                woken_here.pop(next(iter(woken_here)))
            task = asyncio.get_running_loop().create_task(wake_people(hub, prefetch, app.state.sessionmaker, people))
            pending.add(task)
            task.add_done_callback(pending.discard)

        app.state.sessionmaker.kw.setdefault("info", {})[inbox.LOCAL_WAKE] = wake_local
        hints = new_post_hints(hub, app.state.sessionmaker)

        async def deliver(envelope: Envelope) -> None:
            if envelope.type.startswith("hearth.notification."):
                await wake(envelope)
            elif envelope.type == "hearth.post.created":
                await hints(envelope)

        # One reader for both topics: every reader polls the broker all the time (20 ms fetch wait on Tansu).
        reader = FanoutReader(name="notifications.fanout", topics=[settings.topic_notifications, settings.topic_social],
                              deliver=deliver, settings=settings, on_start=lambda: hub.wake(list(hub.connections)))
        supervisor.add(reader.name, reader.run, kind="fanout", source=reader)
        supervisor.add("notifications.frame-purge",
                       lambda stop: purge_loop(frames, app.state.sessionmaker, hub.settings, stop))
    return hook
