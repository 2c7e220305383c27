"""Must-read announcements: acknowledgements, who has and has not acknowledged, and reminders.

The audience of an announcement is everyone active who may read it — the same visibility rule as every
other read path (`readable_by` over the people table), minus the author. An acknowledgement counts for
the announcement's current `ack_version`; an edit that asks for it again raises that version.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from sqlalchemy import and_, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.content.models import Acknowledgement, Post
from services.posts.content.schemas import AckPerson, AckSegment, AckSummary
from services.posts.content.service import excerpt, get_readable, readable_by
from services.posts.people.api import Person, PersonSummary
from shared.auth import CurrentUser
from shared.db import utcnow
from shared.errors import Conflict, Forbidden
from shared.events import AnnouncementAcknowledged, AnnouncementReminderDue
from shared.kafka import sleep_or_stop
from shared.outbox import add_event
from shared.pagination import PageParams, paginate

REMINDER_CHUNK = 1000
DUE_BATCH = 100


class NotMustRead(Conflict):
    code, title = "not-must-read", "This post is not a must-read announcement"


class NotAnnouncementManager(Forbidden):
    code, title = "not-announcement-manager", "Only the author and communications staff see acknowledgements"


def _acked(post: Post, person_id):
    return exists().where(Acknowledgement.post_id == post.id, Acknowledgement.person_id == person_id,
                          Acknowledgement.version >= post.ack_version)


def audience(post: Post):
    """Active people (not the author) who may read the post."""
    return and_(Person.active.is_(True), Person.id != post.author_id,
                exists().where(Post.id == post.id, readable_by(Person.id)))


async def _must_read(session: AsyncSession, *, post_id: UUID, user: CurrentUser) -> Post:
    post = await get_readable(session, post_id=post_id, user=user)
    if post.kind != "announcement" or not post.must_read:
        raise NotMustRead()
    return post


async def _managed(session: AsyncSession, *, post_id: UUID, user: CurrentUser) -> Post:
    post = await _must_read(session, post_id=post_id, user=user)
    if post.author_id != user.id and not user.has_role("communications"):
        raise NotAnnouncementManager()
    return post


async def acknowledge(session: AsyncSession, *, post_id: UUID, user: CurrentUser) -> Post:
    """Acknowledge the current version; repeating it changes nothing."""
    post = await _must_read(session, post_id=post_id, user=user)
    stmt = insert(Acknowledgement).values(post_id=post.id, person_id=user.id, version=post.ack_version,
                                          created_at=utcnow())
    changed = await session.scalar(stmt.on_conflict_do_update(
        index_elements=[Acknowledgement.post_id, Acknowledgement.person_id],
        set_={"version": stmt.excluded.version, "created_at": stmt.excluded.created_at},
        where=Acknowledgement.version < stmt.excluded.version).returning(Acknowledgement.post_id))
    if changed is not None:
        await add_event(session, AnnouncementAcknowledged(post_id=post.id, person_id=user.id,
                                                          version=post.ack_version), subject=post.id, actor=user.id)
    return post


async def list_people(session: AsyncSession, *, post_id: UUID, user: CurrentUser,
                      state: Literal["acknowledged", "pending"], page: PageParams):
    """The audience who have (or have not) acknowledged the current version, by person id."""
    post = await _managed(session, post_id=post_id, user=user)
    acked = _acked(post, Person.id)
    stmt = select(Person).where(audience(post), acked if state == "acknowledged" else ~acked)
    people, cursor = await paginate(session, stmt, columns=[Person.id], page=page, descending=False)
    when = dict((await session.execute(select(Acknowledgement.person_id, Acknowledgement.created_at).where(
        Acknowledgement.post_id == post.id, Acknowledgement.version >= post.ack_version,
        Acknowledgement.person_id.in_([p.id for p in people])))).all())
    return [AckPerson(person=PersonSummary.model_validate(p), acknowledged_at=when.get(p.id)) for p in people], cursor


async def summary(session: AsyncSession, *, post_id: UUID, user: CurrentUser) -> AckSummary:
    """The acknowledgement rate over the audience, overall and by department and location."""
    post = await _managed(session, post_id=post_id, user=user)
    acked = _acked(post, Person.id)

    async def by(column) -> list[AckSegment]:
        rows = await session.execute(select(column, func.count(), func.count().filter(acked))
                                     .where(audience(post)).group_by(column).order_by(column))
        return [AckSegment(value=v, audience=n, acknowledged=a, rate=round(a / n, 4) if n else 0.0)
                for v, n, a in rows]

    total, done = (await session.execute(select(func.count(), func.count().filter(acked))
                                         .where(audience(post)))).one()
    return AckSummary(post_id=post.id, version=post.ack_version, audience=total, acknowledged=done,
                      rate=round(done / total, 4) if total else 0.0, by_department=await by(Person.department),
                      by_location=await by(Person.location))


async def _remind(session: AsyncSession, *, post: Post, actor: UUID | None) -> int:
    pending = list(await session.scalars(select(Person.id).where(audience(post), ~_acked(post, Person.id))
                                         .order_by(Person.id)))
    for start in range(0, len(pending), REMINDER_CHUNK):
        await add_event(session, AnnouncementReminderDue(
            post_id=post.id, author_id=post.author_id, version=post.ack_version, excerpt=excerpt(post.body),
            person_ids=pending[start:start + REMINDER_CHUNK], day=utcnow().date()), subject=post.id, actor=actor)
    post.reminded_at = utcnow()
    return len(pending)


async def remind_now(session: AsyncSession, *, post_id: UUID, user: CurrentUser) -> int:
    """Remind everyone in the audience who has not acknowledged yet (an `announcement.reminder_due` event)."""
    post = await _managed(session, post_id=post_id, user=user)
    count = await _remind(session, post=post, actor=user.id)
    return count


async def send_due_reminders(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Reminders whose time has come (each announcement once per acknowledgement version); returns how many."""
    due = list(await session.scalars(select(Post).where(
        Post.remind_at <= (now or utcnow()), Post.reminded_at.is_(None), Post.deleted_at.is_(None))
        .with_for_update(skip_locked=True).limit(DUE_BATCH)))
    for post in due:
        await _remind(session, post=post, actor=None)
    return len(due)


def reminder_worker(sessionmaker, *, interval: float = 30.0):
    """A background job (run by the service's supervisor): send reminders as they fall due."""

    async def run(stop) -> None:
        while not stop.is_set():
            more = True
            while more:
                # A worker owns its sessions: each batch (its events and `reminded_at`) commits on its own.
                async with sessionmaker() as session:
                    more = await send_due_reminders(session) == DUE_BATCH
                    await session.commit()
            await sleep_or_stop(stop, interval)

    return run
