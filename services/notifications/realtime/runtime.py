"""The notification socket's machinery on each replica: the hub, fan-out readers and frame purging.

Stored frames (new notifications, badge counts) are written with the notification itself; the
notifications.v1 delivery/read events only wake the recipients' sockets, wherever they are connected,
to read those frames from the database (shared/realtime.py). "New posts" hints are ephemeral: every
replica reads social.v1 and tells the sockets it holds that a feed has something new.
"""

from uuid import UUID

from fastapi import FastAPI
from sqlalchemy import select

from services.notifications.audience.models import GroupMember
from services.notifications.config import Settings
from services.notifications.db import frames
from services.notifications.inbox import service as inbox
from shared.directory import directory_people
from shared.events import Envelope
from shared.fanout import FanoutReader
from shared.realtime import Connection, Hub, purge_loop

HINT_FRAME = "feed.new_posts"


def wake_recipients(hub: Hub, woken_here: dict | None = None):
    async def deliver(envelope: Envelope) -> None:
        if woken_here is not None and envelope.id in woken_here:
            del woken_here[envelope.id]
            return  # this replica woke them right after its own commit (again would be a read that finds nothing)
        data = envelope.data
        people = [UUID(p) for p in (data.get("recipients") or ([data["person_id"]] if data.get("person_id") else []))]
        hub.wake(people)  # their sockets here read the frames in one batched query (Hub.fetch)
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
        hub = Hub(tables=frames, sessionmaker=app.state.sessionmaker)
        app.state.hub = hub

        async def connected(conn: Connection) -> None:
            await send_badge(app, conn)

        hub.on_connect.append(connected)
        if not settings.run_background:
            return
        supervisor = app.state.supervisor
        woken_here: dict[UUID, None] = {}  # delivery events whose recipients this replica woke already, oldest first
        wake = wake_recipients(hub, woken_here)

        def wake_local(people: list[UUID], event_ids: list[UUID] = ()) -> None:
            # Right after the consumer's commit; the delivery events wake the other replicas.
            woken_here.update(dict.fromkeys(event_ids))
            while len(woken_here) > 10_000:  # events that never came back (broker lost them): forget the oldest
                woken_here.pop(next(iter(woken_here)))
            hub.wake(people)

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
