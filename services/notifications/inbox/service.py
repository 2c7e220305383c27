"""The inbox: turning events into notifications (in bulk), and the recipient's reads and deletes."""

import json
from dataclasses import asdict, dataclass
from uuid import UUID

from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.db import frames
from services.notifications.inbox.models import Notification
from services.notifications.preferences.defaults import DEFAULTS
from shared.db import utcnow
from shared.directory import directory_people
from shared.errors import NotFound
from shared.events import Envelope, NotificationsDeleted, NotificationsDelivered, NotificationsRead
from shared.outbox import add_event, add_events
from shared.pagination import PageParams, paginate

EVENT_RECIPIENTS_MAX = 1000  # recipients per notifications.v1 event (an announcement to 10,000 is 10 events)
FRAME_KIND = "notification"
LOCAL_WAKE = "notifications.wake_local_sockets"  # session.info key, set by the socket runtime
BADGE_FRAME = "badge"

VERBS = {"mention": "mentioned you", "comment": "commented on your post", "reply": "replied to your comment",
         "reaction": "reacted to your post", "comment_reaction": "reacted to your comment",
         "follow": "followed you", "follow_request": "asked to follow you",
         "follow_approved": "approved your follow request", "group_invite": "invited you to a group",
         "join_request": "asked to join your group", "join_approved": "approved your request to join",
         "announcement": "published a must-read announcement",
         "plain_announcement": "published an announcement", "announcement_reminder": "reminds you to read",
         "praise": "praised you", "best_answer": "chose your answer as the best",
         "message": "sent you a message"}


class NotificationNotFound(NotFound):
    code, title = "notification-not-found", "Notification not found"


@dataclass(frozen=True)
class Source:
    """What a notification is about: shown to the recipient, checked against mutes, removed with its source."""

    kind: str
    actor_id: UUID | None
    subject_type: str
    subject_id: UUID
    excerpt: str = ""
    post_id: UUID | None = None
    comment_id: UUID | None = None
    group_id: UUID | None = None
    conversation_id: UUID | None = None
    must_read: bool = False  # mutes do not silence a must-read announcement

    def frame(self) -> dict:
        return {k: (str(v) if isinstance(v, UUID) else v) for k, v in asdict(self).items() if k != "must_read"}


# Who may be notified: not the actor, not deactivated (unknown to the directory yet counts as active:
# the people topic can lag the social one), not muting the actor, group, post or conversation.
_ELIGIBLE = """
SELECT DISTINCT c.person_id FROM ({candidates}) AS c
WHERE c.person_id IS DISTINCT FROM CAST(:actor AS uuid)
  AND NOT EXISTS (SELECT 1 FROM directory_people d WHERE d.id = c.person_id AND NOT d.active)
  AND (CAST(:must_read AS boolean) OR NOT EXISTS (
      SELECT 1 FROM notification_mutes m WHERE m.person_id = c.person_id AND (
          (m.target_type = 'person' AND m.target_id = CAST(:actor AS uuid))
       OR (m.target_type = 'group' AND m.target_id = CAST(:group_id AS uuid))
       OR (m.target_type = 'post' AND m.target_id = CAST(:post_id AS uuid))
       OR (m.target_type = 'conversation' AND m.target_id = CAST(:conversation_id AS uuid)))))
"""
LISTED = "SELECT unnest(CAST(:ids AS uuid[])) AS person_id"
GROUP_MEMBERS = "SELECT person_id FROM group_members WHERE group_id = CAST(:audience_group AS uuid)"
EVERYONE = "SELECT id AS person_id FROM directory_people WHERE active"


def wants(channel: str, default: bool, person: str = "e.person_id") -> str:
    """SQL: `person` wants `kind` on `channel` (their override, else the default).

    Written as (NOT) EXISTS of the overrides that differ from the default rather than a COALESCE of a
    subquery: PostgreSQL runs it as one hash (anti-)join over the kind's overrides, not 10,000 probes."""
    differs = (f"SELECT 1 FROM notification_preferences p WHERE p.person_id = {person} "
               f"AND p.kind = CAST(:kind AS varchar) AND {'NOT ' if default else ''}p.{channel}")
    return f"{'NOT ' if default else ''}EXISTS ({differs})"


# A UUIDv7 (time-ordered) made in SQL, as the ORM's uuid7 default makes them: 10,000 rows land at the
# right edge of the primary key instead of on 10,000 random pages (PostgreSQL 16 has no uuidv7()).
UUID7_SQL = ("encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing substring(int8send("
             "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), "
             "'hex')::uuid")

# No ON CONFLICT: the consumer's dedupe (processed events, in this transaction) is what makes a replayed
# event notify nobody twice, and `eligible` lists each person once; a speculative insertion per row and a
# unique index on (recipient, kind, event) cost half of a 10,000-row announcement.
_INSERT = """
INSERT INTO notifications (id, recipient_id, kind, actor_id, actor_count, actor_ids, subject_type, subject_id,
    excerpt, group_key, post_id, comment_id, group_id, conversation_id, source_event_id, created_at, updated_at)
SELECT {uuid7}, e.person_id, CAST(:kind AS varchar), CAST(:actor AS uuid), 1,
    CASE WHEN CAST(:actor AS uuid) IS NULL THEN '{{}}'::uuid[] ELSE ARRAY[CAST(:actor AS uuid)] END,
    CAST(:subject_type AS varchar), CAST(:subject_id AS uuid), CAST(:excerpt AS varchar), NULL,
    CAST(:post_id AS uuid), CAST(:comment_id AS uuid), CAST(:group_id AS uuid), CAST(:conversation_id AS uuid),
    CAST(:event_id AS uuid), clock_timestamp(), clock_timestamp()
FROM unnest(CAST(:eligible AS uuid[])) AS e(person_id)
WHERE {wants}
RETURNING recipient_id
"""

_PUSH = """
INSERT INTO push_jobs (id, device_id, person_id, dedupe_key, title, body, data, status, attempts, next_attempt_at,
    created_at)
SELECT gen_random_uuid(), d.id, d.person_id, CAST(:dedupe_key AS varchar), CAST(:title AS varchar),
    CAST(:body AS varchar), CAST(:data AS jsonb), 'pending', 0, clock_timestamp(), clock_timestamp()
FROM push_devices d JOIN unnest(CAST(:eligible AS uuid[])) AS e(person_id) ON d.person_id = e.person_id
WHERE {wants}
ON CONFLICT DO NOTHING
"""


def _mute_params(source: Source) -> dict:
    return dict(actor=source.actor_id, post_id=source.post_id, group_id=source.group_id,
                conversation_id=source.conversation_id, must_read=source.must_read)


def _params(source: Source, envelope: Envelope) -> dict:
    return _mute_params(source) | dict(kind=source.kind, subject_type=source.subject_type, subject_id=source.subject_id,
                                       excerpt=source.excerpt[:300], comment_id=source.comment_id, event_id=envelope.id)


async def eligible(session: AsyncSession, source: Source, *, candidates: str, **params) -> list[UUID]:
    sql = text(_ELIGIBLE.format(candidates=candidates))
    return list(await session.scalars(sql, _mute_params(source) | params))


async def notify(session: AsyncSession, envelope: Envelope, source: Source, *, recipients: list[UUID] = (),
                 candidates: str = LISTED, **params) -> list[UUID]:
    """Notify people in bulk: inbox rows, socket frames, push jobs and delivery events, a few statements in all.

    `candidates` is SQL selecting `person_id` (the listed ids, a group's members, everyone), so an
    audience of 10,000 never travels through Python one row at a time. Returns who got an inbox row."""
    if candidates == LISTED:
        params["ids"] = list(recipients)
    people = await eligible(session, source, candidates=candidates, **params)
    if not people:
        return []
    channels = DEFAULTS[source.kind]
    values = _params(source, envelope) | {"eligible": people}
    inserted = []
    if source.kind != "message":  # a new message is never an inbox row (push and email only)
        sql = _INSERT.format(uuid7=UUID7_SQL, wants=wants("in_app", channels.in_app))
        inserted = list(await session.scalars(text(sql), values))
    await queue_push(session, source, people=people, dedupe_key=f"{source.kind}:{envelope.id}",
                     title=await title_for(session, source), default=channels.push)
    await deliver_in_app(session, source, inserted, envelope_id=envelope.id)
    return inserted


async def queue_push(session: AsyncSession, source: Source, *, people: list[UUID], dedupe_key: str, title: str,
                     default: bool) -> None:
    data = json.dumps(source.frame())
    await session.execute(text(_PUSH.format(wants=wants("push", default))), dict(
        eligible=people, kind=source.kind, dedupe_key=dedupe_key, title=title[:200], body=source.excerpt[:300],
        data=data))


# The same write as shared.realtime.FrameTables.append (one seq bump per person, cursors locked in person
# order, one frame each) in one statement with array parameters: `append` binds 4 parameters per frame,
# and 10,000 recipients would exceed PostgreSQL's 32,767 bind parameters and take long to compile.
_APPEND_FRAMES = text(f"""
WITH bumped AS (
    INSERT INTO {frames.cursors.name} (person_id, last_seq)
    SELECT p, 1 FROM unnest(CAST(:people AS uuid[])) AS p ORDER BY p
    ON CONFLICT (person_id) DO UPDATE SET last_seq = {frames.cursors.name}.last_seq + 1
    RETURNING person_id, last_seq)
INSERT INTO {frames.frames.name} (person_id, seq, kind, data)
SELECT person_id, last_seq, CAST(:kind AS varchar), CAST(:data AS jsonb) FROM bumped
""")


async def append_frames(session: AsyncSession, *, recipients: list[UUID], kind: str, data: dict) -> None:
    if len(recipients) <= 100:
        await frames.append(session, recipients=recipients, kind=kind, data=data)
    else:
        await session.execute(_APPEND_FRAMES, {"people": sorted(set(recipients)), "kind": kind,
                                               "data": json.dumps(data)})


async def deliver_in_app(session: AsyncSession, source: Source, recipients: list[UUID], *, envelope_id: UUID | None):
    """Socket frames for the recipients and the delivery events that wake their sockets on every replica."""
    if not recipients:
        return
    await append_frames(session, recipients=recipients, kind=FRAME_KIND, data=source.frame())
    chunks = [recipients[start:start + EVENT_RECIPIENTS_MAX] for start in range(0, len(recipients),
                                                                                 EVENT_RECIPIENTS_MAX)]
    envelopes = await add_events(session, [(NotificationsDelivered(kind=source.kind, source_event_id=envelope_id,
                                                                   subject_type=source.subject_type,
                                                                   subject_id=source.subject_id, recipients=chunk),
                                            source.subject_id) for chunk in chunks], actor=source.actor_id)
    wake_here = session.info.get(LOCAL_WAKE)
    if wake_here is not None:  # this replica's sockets need not wait for relay -> broker -> fan-out reader
        ids = [e.id for e in envelopes]  # when these come back through the fan-out, this replica skips them
        event.listen(session.sync_session, "after_commit", lambda _: wake_here(recipients, ids), once=True)


async def title_for(session: AsyncSession, source: Source, *, others: int = 0) -> str:
    name = None
    if source.actor_id is not None:
        name = await session.scalar(select(directory_people.c.display_name)
                                    .where(directory_people.c.id == source.actor_id))
    who = name or "Someone"
    if others > 0:
        who += f" and {others} other{'s' if others > 1 else ''}"
    return f"{who} {VERBS.get(source.kind, source.kind)}"


async def upsert_grouped(session: AsyncSession, envelope: Envelope, source: Source, *, recipient: UUID,
                         group_key: str, actor_count: int, actor_ids: list[UUID], bump: bool) -> None:
    """One row per recipient and group key ("Ana and 4 others reacted"), updated in place; none when count is 0.

    The group key is what the row is about (reactions on one post, or on one comment). A newer event's excerpt
    replaces the row's (a comment edited since shows its new text); an empty one keeps it."""
    if actor_count <= 0:
        await session.execute(delete(Notification).where(Notification.recipient_id == recipient,
                                                         Notification.group_key == group_key))
        return
    if bump:  # a new actor: the row counts as new again (unread, at the top)
        people = await eligible(session, source, candidates=LISTED, ids=[recipient])
        channels = DEFAULTS[source.kind]
        if not people or not await _wants(session, recipient, source.kind, "in_app", channels.in_app):
            return
        await session.execute(text("""
            INSERT INTO notifications (id, recipient_id, kind, actor_id, actor_count, actor_ids, subject_type,
                subject_id, excerpt, group_key, post_id, comment_id, group_id, source_event_id, created_at, updated_at)
            VALUES (gen_random_uuid(), :recipient, :kind, :actor, :count, CAST(:actors AS uuid[]), :subject_type,
                :subject_id, :excerpt, :group_key, CAST(:post_id AS uuid), CAST(:comment_id AS uuid),
                CAST(:group_id AS uuid), :event_id, clock_timestamp(), clock_timestamp())
            ON CONFLICT (recipient_id, group_key) WHERE group_key IS NOT NULL DO UPDATE SET
                actor_id = EXCLUDED.actor_id, actor_count = EXCLUDED.actor_count, actor_ids = EXCLUDED.actor_ids,
                excerpt = COALESCE(NULLIF(EXCLUDED.excerpt, ''), notifications.excerpt),
                source_event_id = EXCLUDED.source_event_id, updated_at = clock_timestamp(), read_at = NULL"""),
            dict(recipient=recipient, kind=source.kind, actor=source.actor_id, count=actor_count, actors=actor_ids,
                 subject_type=source.subject_type, subject_id=source.subject_id, excerpt=source.excerpt[:300],
                 group_key=group_key, post_id=source.post_id, comment_id=source.comment_id, group_id=source.group_id,
                 event_id=envelope.id))
        await deliver_in_app(session, source, [recipient], envelope_id=envelope.id)
    else:  # someone took their reaction back: fix the count quietly
        await session.execute(update(Notification).where(Notification.recipient_id == recipient,
                                                         Notification.group_key == group_key)
                              .values(actor_count=actor_count, actor_ids=actor_ids,
                                      actor_id=actor_ids[0] if actor_ids else None))


async def _wants(session: AsyncSession, person_id: UUID, kind: str, channel: str, default: bool) -> bool:
    value = await session.scalar(text(f"SELECT {channel} FROM notification_preferences "
                                      "WHERE person_id = :p AND kind = :k"), {"p": person_id, "k": kind})
    return default if value is None else value


async def remove_where(session: AsyncSession, *conditions) -> None:
    """A source went away (post or comment deleted, access lost): its notifications disappear."""
    await session.execute(delete(Notification).where(*conditions))


# --- the recipient's side -------------------------------------------------------------------------------

async def get_all(session: AsyncSession, *, recipient_id: UUID, page: PageParams, unread_only: bool = False,
                  kinds: list[str] | None = None):
    stmt = select(Notification).where(Notification.recipient_id == recipient_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    if kinds:
        stmt = stmt.where(Notification.kind.in_(kinds))
    return await paginate(session, stmt, columns=[Notification.updated_at, Notification.id], page=page)


async def actor_names(session: AsyncSession, notifications: list[Notification]) -> dict[UUID, str]:
    ids = {a for n in notifications for a in ([n.actor_id] if n.actor_id else [])}
    if not ids:
        return {}
    rows = await session.execute(select(directory_people.c.id, directory_people.c.display_name)
                                 .where(directory_people.c.id.in_(ids)))
    return {r.id: r.display_name for r in rows}


async def unread_count(session: AsyncSession, *, recipient_id: UUID) -> int:
    return await session.scalar(select(func.count()).select_from(Notification)
                                .where(Notification.recipient_id == recipient_id, Notification.read_at.is_(None)))


async def get_own_or_raise(session: AsyncSession, *, notification_id: UUID, recipient_id: UUID) -> Notification:
    """One of the recipient's notifications; someone else's is reported as not found."""
    notification = await session.get(Notification, notification_id)
    if notification is None or notification.recipient_id != recipient_id:
        raise NotificationNotFound()
    return notification


async def _badge(session: AsyncSession, person_id: UUID) -> None:
    """A stored badge frame with the new unread count, so every socket of the person (and a resume) agrees."""
    await frames.append(session, recipients=[person_id], kind=BADGE_FRAME,
                        data={"unread": await unread_count(session, recipient_id=person_id)})


async def mark_read(session: AsyncSession, *, notification_id: UUID, recipient_id: UUID) -> Notification:
    notification = await get_own_or_raise(session, notification_id=notification_id, recipient_id=recipient_id)
    if notification.read_at is None:
        notification.read_at = utcnow()
        await session.flush()
        await _badge(session, recipient_id)
        await add_event(session, NotificationsRead(person_id=recipient_id, notification_ids=[notification.id], count=1),
                        subject=recipient_id, actor=recipient_id)
    return notification


async def mark_all_read(session: AsyncSession, *, recipient_id: UUID) -> int:
    result = await session.execute(update(Notification).where(Notification.recipient_id == recipient_id,
                                                              Notification.read_at.is_(None)).values(read_at=utcnow()))
    count = result.rowcount or 0
    if count:
        await _badge(session, recipient_id)
        await add_event(session, NotificationsRead(person_id=recipient_id, all=True, count=count),
                        subject=recipient_id, actor=recipient_id)
    return count


async def delete_one(session: AsyncSession, *, notification_id: UUID, recipient_id: UUID) -> None:
    notification = await get_own_or_raise(session, notification_id=notification_id, recipient_id=recipient_id)
    was_unread = notification.read_at is None
    await session.delete(notification)
    await session.flush()
    if was_unread:
        await _badge(session, recipient_id)
    await add_event(session, NotificationsDeleted(person_id=recipient_id, notification_ids=[notification_id],
                                                  unread=int(was_unread)), subject=recipient_id, actor=recipient_id)
