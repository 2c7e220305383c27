"""Messages: send (deduplicated by client_msg_id), history both ways, edit, delete, reactions, search."""

import base64
import json
from datetime import datetime
from types import SimpleNamespace
from uuid import UUID

import asyncpg
from sqlalchemy import bindparam, exists, func, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.messaging.attachments import service as attachments
from services.messaging.conversations.models import Conversation, Member
from services.messaging.conversations.service import (ConversationNotFound, MessageNotFound, get_membership_or_raise,
                                                      get_or_create_direct, member_ids)
from services.messaging.messages.models import Message, MessageEdit, Reaction
from services.messaging.people.service import resolve_mentions
from services.messaging.realtime.models import frames
from services.messaging.realtime.service import publish
from shared.db import utcnow
from shared.errors import Forbidden, InvalidInput
from shared.events.messaging import (MessageDeleted, MessageEdited, MessageReactionAdded, MessageReactionRemoved,
                                     MessageSent)
from shared.markdown import render
from shared.events import Envelope
from shared.outbox import add_event, add_event_cte, event_params

EXCERPT = 200


class NotTheSender(Forbidden):
    code, title = "not-the-sender", "Only the sender may do this"


def _same_client_msg_id(error) -> bool:
    """The driver's error is the unique index on (conversation, sender, client_msg_id)."""
    return getattr(error, "constraint_name", None) == "uq_messages_client_msg_id" or \
        "uq_messages_client_msg_id" in str(error)


class MessageDeletedAlready(InvalidInput):
    code, title = "message-deleted", "The message was deleted"


def public(message: Message, reactions: list[dict] | None = None, attachments: list[dict] | None = None) -> dict:
    deleted = message.deleted_at is not None
    return {"id": message.id, "conversation_id": message.conversation_id, "seq": message.seq,
            "sender_id": message.sender_id, "client_msg_id": message.client_msg_id,
            "body": "" if deleted else message.body, "body_html": "" if deleted else message.body_html,
            "reply_to_id": message.reply_to_id, "created_at": message.created_at, "edited_at": message.edited_at,
            "deleted": deleted, "reactions": reactions or [], "attachments": [] if deleted else (attachments or [])}


def frame_data(message: Message, reactions: list[dict] | None = None, attachments: list[dict] | None = None) -> dict:
    """`public` as JSON values (ids and times as their str(), as json.dumps(default=str) writes them)."""
    data = public(message, reactions, attachments)
    for key, value in data.items():
        if isinstance(value, (UUID, datetime)):
            data[key] = str(value)
        elif isinstance(value, list) and value:
            data[key] = json.loads(json.dumps(value, default=str))
    return data


async def full(session: AsyncSession, message: Message, viewer: UUID) -> dict:
    """A message as the API shows it, with reactions and attachments."""
    reactions = await reactions_of(session, [message.id], viewer)
    files = await attachments.of_messages(session, [message.id])
    return public(message, reactions.get(message.id), files.get(message.id))


async def send(session: AsyncSession, *, conversation_id: UUID, sender_id: UUID, body: str,
               client_msg_id: str | None = None, reply_to_id: UUID | None = None,
               attachment_ids: list[UUID] = ()) -> tuple[Message, bool]:
    """Send into a conversation the sender belongs to; a retried client_msg_id returns the first message."""
    message = await _insert(session, conversation_id=conversation_id, sender_id=sender_id, body=body,
                            client_msg_id=client_msg_id, reply_to_id=reply_to_id, attachment_ids=attachment_ids)
    if message is not None:
        return message, True
    # Nothing was written: the sender is not a member, or sent this client_msg_id before.
    await get_membership_or_raise(session, conversation_id=conversation_id, person_id=sender_id)
    existing = await _by_client_id(session, conversation_id, sender_id, client_msg_id)
    if existing is None:  # removed from the conversation meanwhile
        raise ConversationNotFound()
    return existing, False


async def send_direct(session: AsyncSession, *, sender_id: UUID, recipient_id: UUID, body: str,
                      client_msg_id: str | None = None, reply_to_id: UUID | None = None,
                      attachment_ids: list[UUID] = ()) -> tuple[Message, bool]:
    """The first message to someone creates the pair's conversation, in the same transaction."""
    conversation = await get_or_create_direct(session, me=sender_id, other=recipient_id)
    return await send(session, conversation_id=conversation.id, sender_id=sender_id, body=body,
                      client_msg_id=client_msg_id, reply_to_id=reply_to_id, attachment_ids=attachment_ids)


async def _by_client_id(session, conversation_id, sender_id, client_msg_id) -> Message | None:
    if not client_msg_id:
        return None
    return await session.scalar(select(Message).where(
        Message.conversation_id == conversation_id, Message.sender_id == sender_id,
        Message.client_msg_id == client_msg_id))


def _send_statement(*, with_frame: bool, with_event: bool = False):
    """Built once (statement construction costs more CPU than the database's work for it): bump the
    conversation's counter (locking its row, so seq follows commit order, the order every reader sees)
    if the sender is a member and the client_msg_id is new, store the message at that seq, move the
    sender's read marker to it, and read who gets the message - one round trip."""
    # Parameter names unlike any column's: an execution's keys that match columns would become SET/VALUES items.
    p = {name: bindparam(f"m_{name}", type_=column.type) for name, column in Message.__table__.c.items()}
    bump = (update(Conversation)
            .where(Conversation.id == p["conversation_id"],
                   exists().where(Member.conversation_id == p["conversation_id"], Member.person_id == p["sender_id"]),
                   ~exists().where(Message.conversation_id == p["conversation_id"], Message.sender_id == p["sender_id"],
                                   Message.client_msg_id == p["client_msg_id"]))  # NULL matches nothing
            .values(last_seq=Conversation.last_seq + 1, last_message_at=p["created_at"])
            .returning(Conversation.id, Conversation.last_seq).cte("bump"))
    mark = (update(Member).where(Member.conversation_id == bump.c.id, Member.person_id == p["sender_id"])
            .values(last_read_seq=bump.c.last_seq, last_read_message_id=p["id"], last_read_at=p["created_at"])
            .returning(Member.person_id).cte("mark"))
    columns = ["id", "conversation_id", "sender_id", "client_msg_id", "body", "body_html", "reply_to_id", "created_at"]
    store = (insert(Message).from_select(columns + ["seq"], select(*(p[c] for c in columns), bump.c.last_seq))
             .returning(Message.seq).cte("store"))
    members = select(func.array_agg(Member.person_id)).where(Member.conversation_id == p["conversation_id"])
    statement = select(store.c.seq, members.scalar_subquery()).add_cte(mark)
    if not with_frame:
        return statement
    # ... and every member's `message.created` frame (given without its seq, which is set here): the
    # message and its frames in the same round trip. Nothing stored (not a member, a retry): no frames.
    data = func.jsonb_set(bindparam("m_frame", type_=JSONB), literal_column("'{seq}'::text[]"), func.to_jsonb(store.c.seq))
    wanted = select(Member.person_id.label("person_id"), data.label("data")) \
        .join_from(store, Member, Member.conversation_id == p["conversation_id"])
    statement = statement.add_cte(frames.append_cte(wanted, kind="message.created", name="frame"))
    if not with_event:
        return statement
    # ... and its hearth.message.sent event, the envelope given with the members filled in here.
    envelope = func.jsonb_set(bindparam("o_envelope", type_=JSONB), literal_column("'{data,recipients}'::text[]"),
                              func.to_jsonb(members.scalar_subquery()))
    return statement.add_cte(add_event_cte(store, payload_json=envelope))


_SEND = _send_statement(with_frame=False)  # a message with attachments: its frame lists them, stored after
_SEND_WITH_FRAME = _send_statement(with_frame=True)


async def _insert(session: AsyncSession, *, conversation_id: UUID, sender_id: UUID, body: str,
                  client_msg_id: str | None, reply_to_id: UUID | None, attachment_ids=()) -> Message | None:
    """Store a message and its frames and event; None (nothing written) when the sender is not a member or
    the client_msg_id was sent before. Checks that fail later raise: the caller's unit of work rolls back."""
    message = Message(id=uuid7(), conversation_id=conversation_id, sender_id=sender_id, client_msg_id=client_msg_id,
                      body=body, body_html=render(body), reply_to_id=reply_to_id, created_at=utcnow())
    values = {f"m_{c}": getattr(message, c) for c in ("id", "conversation_id", "sender_id", "client_msg_id", "body",
                                                       "body_html", "reply_to_id", "created_at")}
    with_frame = not attachment_ids
    if with_frame:
        values["m_frame"] = frame_data(message)
    # On the session's connection (its transaction), without the ORM's execution layer: a Core statement.
    connection = await session.connection()
    statement = _SEND_WITH_FRAME if with_frame else _SEND
    if client_msg_id is None:
        stored = (await connection.execute(statement, values)).first()
    else:
        # A retry racing its original: neither statement sees the other's uncommitted message, so the later
        # one waits on the conversation's row and then fails the unique index once the first has committed.
        # The savepoint keeps the transaction usable, and `send` answers with the first message.
        try:
            async with connection.begin_nested():
                stored = (await connection.execute(statement, values)).first()
        except IntegrityError as exc:
            if not _same_client_msg_id(exc.orig):
                raise
            return None
    if stored is None:
        return None
    message.seq, recipients = stored
    message_id, now = message.id, message.created_at
    if reply_to_id is not None:
        parent = await session.get(Message, reply_to_id)
        if parent is None or parent.conversation_id != conversation_id:
            raise MessageNotFound("The message replied to is not in this conversation.")
    files = [attachments.public(a) for a in await attachments.attach(
        session, attachment_ids=list(attachment_ids), conversation_id=conversation_id, sender_id=sender_id,
        message_id=message_id)]
    mentions = await resolve_mentions(session, body=body, member_ids=[p for p in recipients if p != sender_id])
    event = MessageSent(message_id=message_id, conversation_id=conversation_id, sender_id=sender_id,
                        reply_to_id=reply_to_id, excerpt=body[:EXCERPT], mentions=mentions, created_at=now,
                        recipients=recipients)
    if with_frame:  # the frames are stored already
        await add_event(session, event, subject=conversation_id, actor=sender_id)
    else:
        await publish(session, event, kind="message.created", data=frame_data(message, attachments=files),
                      subject=conversation_id, actor=sender_id)
    return message


class _Compiled:
    """A Core statement compiled once for asyncpg: its SQL and the order of its parameters."""

    def __init__(self, statement):
        self.compiled = statement.compile(dialect=asyncpg_dialect())
        self.sql = str(self.compiled)
        self.constants: dict | None = None  # the statement's own literals (taken once: construct_params is slow)

    def args(self, values: dict) -> list:
        if self.constants is None:
            params = self.compiled.construct_params(values)
            self.constants = {name: params[name] for name in self.compiled.positiontup if name not in values}
        constants = self.constants
        return [values[name] if name in values else constants[name] for name in self.compiled.positiontup]


_SEND_PLAIN = _Compiled(_send_statement(with_frame=True, with_event=True))


def can_send_plain(*, body: str, reply_to_id: UUID | None, attachment_ids) -> bool:
    """A message `send_plain` takes: no reply, no attachments, no mention (their checks need the ORM path)."""
    return reply_to_id is None and not attachment_ids and "@" not in body


async def send_plain(pool: asyncpg.Pool, *, service: str, conversation_id: UUID, sender_id: UUID, body: str,
                     client_msg_id: str | None) -> dict | None:
    """`send` of a plain message (see `can_send_plain`) as ONE statement straight on asyncpg, in autocommit
    (a statement is its own transaction): the message, the sender's read marker, every member's frame
    and the hearth.message.sent outbox row (its recipients filled in by the statement), without ORM
    objects; the new message's frame data, or None when nothing was written (not a member, or a retried
    client_msg_id), for `send` to answer."""
    message = SimpleNamespace(id=uuid7(), conversation_id=conversation_id, seq=None, sender_id=sender_id,
                              client_msg_id=client_msg_id, body=body, body_html=render(body), reply_to_id=None,
                              created_at=utcnow(), edited_at=None, deleted_at=None)
    data = frame_data(message)
    event = MessageSent(message_id=message.id, conversation_id=conversation_id, sender_id=sender_id,
                        excerpt=body[:EXCERPT], created_at=message.created_at, recipients=[])
    envelope = Envelope.wrap(event, source=service, subject=conversation_id, actor=sender_id)
    values = {f"m_{c}": getattr(message, c) for c in ("id", "conversation_id", "sender_id", "client_msg_id", "body",
                                                       "body_html", "reply_to_id", "created_at")}
    # (the driver's JSONB parameters are JSON text)
    values |= {"m_frame": json.dumps(data), "o_envelope": envelope.model_dump_json()} | \
        event_params(envelope, event, with_bytes=False)
    # (asyncpg's pool drops a connection that broke or was left mid-statement)
    async with pool.acquire() as connection:
        try:
            stored = await connection.fetchrow(_SEND_PLAIN.sql, *_SEND_PLAIN.args(values))
        except asyncpg.UniqueViolationError as exc:
            if not _same_client_msg_id(exc):
                raise
            return None  # a retry racing its original, committed first: `send` answers with that one
    if stored is None:
        return None
    return data | {"seq": stored[0]}


async def get_for_member(session: AsyncSession, *, message_id: UUID, person_id: UUID) -> Message:
    """A message of a conversation the person belongs to; otherwise it does not exist for them."""
    message = await session.get(Message, message_id)
    if message is None:
        raise MessageNotFound()
    try:
        await get_membership_or_raise(session, conversation_id=message.conversation_id, person_id=person_id)
    except Exception:
        raise MessageNotFound()
    return message


async def edit(session: AsyncSession, *, message_id: UUID, editor_id: UUID, body: str) -> Message:
    message = await get_for_member(session, message_id=message_id, person_id=editor_id)
    if message.sender_id != editor_id:
        raise NotTheSender()
    if message.deleted_at is not None:
        raise MessageDeletedAlready()
    if body == message.body:
        return message
    session.add(MessageEdit(message_id=message.id, body=message.body, edited_at=message.edited_at or message.created_at))
    message.body, message.body_html, message.edited_at = body, render(body), utcnow()
    await session.flush()
    recipients = await member_ids(session, message.conversation_id)
    await publish(session, MessageEdited(message_id=message.id, conversation_id=message.conversation_id,
                                         editor_id=editor_id, edited_at=message.edited_at, recipients=recipients),
                  kind="message.edited", data=frame_data(message), subject=message.conversation_id, actor=editor_id)
    return message


async def delete(session: AsyncSession, *, message_id: UUID, person_id: UUID) -> Message:
    """A tombstone: the message keeps its place in the order, its text is gone (edit history too)."""
    message = await get_for_member(session, message_id=message_id, person_id=person_id)
    if message.sender_id != person_id:
        raise NotTheSender()
    if message.deleted_at is not None:
        return message
    message.deleted_at, message.body, message.body_html = utcnow(), "", ""
    await session.execute(MessageEdit.__table__.delete().where(MessageEdit.message_id == message.id))
    await session.flush()
    recipients = await member_ids(session, message.conversation_id)
    await publish(session, MessageDeleted(message_id=message.id, conversation_id=message.conversation_id,
                                          deleted_by=person_id, recipients=recipients),
                  kind="message.deleted", data=frame_data(message), subject=message.conversation_id, actor=person_id)
    return message


async def edits(session: AsyncSession, *, message_id: UUID, person_id: UUID) -> list[MessageEdit]:
    message = await get_for_member(session, message_id=message_id, person_id=person_id)
    return list(await session.scalars(select(MessageEdit).where(MessageEdit.message_id == message.id)
                                      .order_by(MessageEdit.edited_at, MessageEdit.id)))


async def react(session: AsyncSession, *, message_id: UUID, person_id: UUID, emoji: str, add: bool) -> list[dict]:
    message = await get_for_member(session, message_id=message_id, person_id=person_id)
    if message.deleted_at is not None:
        raise MessageDeletedAlready()
    key = (message.id, person_id, emoji)
    existing = await session.get(Reaction, key)
    if add == (existing is not None):
        return (await reactions_of(session, [message.id], person_id)).get(message.id, [])
    if add:
        session.add(Reaction(message_id=message.id, person_id=person_id, emoji=emoji))
    else:
        await session.delete(existing)
    await session.flush()
    recipients = await member_ids(session, message.conversation_id)
    event_cls = MessageReactionAdded if add else MessageReactionRemoved
    await publish(session, event_cls(message_id=message.id, conversation_id=message.conversation_id,
                                     person_id=person_id, emoji=emoji, recipients=recipients),
                  kind="message.reaction_added" if add else "message.reaction_removed",
                  data={"message_id": str(message.id), "conversation_id": str(message.conversation_id),
                        "person_id": str(person_id), "emoji": emoji},
                  subject=message.conversation_id, actor=person_id)
    return (await reactions_of(session, [message.id], person_id)).get(message.id, [])


async def reactions_of(session: AsyncSession, message_ids: list[UUID], viewer: UUID) -> dict[UUID, list[dict]]:
    if not message_ids:
        return {}
    rows = await session.execute(
        select(Reaction.message_id, Reaction.emoji, func.count(), func.bool_or(Reaction.person_id == viewer))
        .where(Reaction.message_id.in_(message_ids)).group_by(Reaction.message_id, Reaction.emoji)
        .order_by(Reaction.message_id, func.min(Reaction.created_at)))
    out: dict[UUID, list[dict]] = {}
    for message_id, emoji, count, mine in rows:
        out.setdefault(message_id, []).append({"emoji": emoji, "count": count, "mine": bool(mine)})
    return out


def _cursor(direction: str, seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([direction, seq]).encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, int]:
    try:
        direction, seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if direction not in ("older", "newer") or not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError
        return direction, seq
    except (ValueError, TypeError):
        raise InvalidInput("The cursor is not valid.", field="cursor")


async def _older(session, conversation_id, before: int | None, limit: int) -> list[Message]:
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        stmt = stmt.where(Message.seq < before)
    return list(reversed(list(await session.scalars(stmt.order_by(Message.seq.desc()).limit(limit)))))


async def _newer(session, conversation_id, after: int, limit: int) -> list[Message]:
    return list(await session.scalars(select(Message).where(Message.conversation_id == conversation_id,
                                                            Message.seq > after)
                                      .order_by(Message.seq).limit(limit)))


async def history(session: AsyncSession, *, conversation_id: UUID, person_id: UUID, limit: int,
                  cursor: str | None = None, around: str | None = None) -> dict:
    """A page of messages, oldest first: the newest ones, older/newer than a cursor, or around a marker."""
    conversation, member = await get_membership_or_raise(session, conversation_id=conversation_id, person_id=person_id)
    if cursor and around:
        raise InvalidInput("Use either `cursor` or `around`.", field="around")
    if around is not None:
        anchor = await _anchor(session, conversation_id, member, around)
        before = await _older(session, conversation_id, anchor + 1, max(1, limit // 2))
        after = await _newer(session, conversation_id, anchor, limit - len(before))
        messages = before + after
        has_older = bool(messages) and messages[0].seq > 1
        has_newer = len(after) == limit - len(before) and bool(after) and after[-1].seq < conversation.last_seq
    elif cursor:
        direction, seq = _decode(cursor)
        if direction == "older":
            messages = await _older(session, conversation_id, seq, limit + 1)
            has_older, messages = len(messages) > limit, messages[-limit:]
            has_newer = True
        else:
            messages = await _newer(session, conversation_id, seq, limit + 1)
            has_newer, messages = len(messages) > limit, messages[:limit]
            has_older = True
    else:
        messages = await _older(session, conversation_id, None, limit + 1)
        has_older, messages, has_newer = len(messages) > limit, messages[-limit:], False
    reactions = await reactions_of(session, [m.id for m in messages], person_id)
    files = await attachments.of_messages(session, [m.id for m in messages])
    items = [public(m, reactions.get(m.id), files.get(m.id)) for m in messages]
    older = _cursor("older", messages[0].seq) if messages and has_older else None
    newer = _cursor("newer", messages[-1].seq) if messages and has_newer else None
    forward_newer = cursor is not None and _decode(cursor)[0] == "newer"
    return {"items": items, "next_cursor": newer if forward_newer else older,
            "prev_cursor": older if forward_newer else newer}


async def _anchor(session, conversation_id: UUID, member: Member, around: str) -> int:
    if around == "unread":
        return member.last_read_seq
    try:
        message_id = UUID(around)
    except ValueError:
        raise InvalidInput("`around` is `unread` or a message id.", field="around")
    seq = await session.scalar(select(Message.seq).where(Message.id == message_id,
                                                         Message.conversation_id == conversation_id))
    if seq is None:
        raise MessageNotFound()
    return seq


async def search(session: AsyncSession, *, person_id: UUID, q: str, limit: int, cursor: str | None) -> tuple[list, str | None]:
    """Full-text search over the messages of the person's own conversations, newest first."""
    query = func.plainto_tsquery("simple", q)
    stmt = (select(Message, Conversation.title)
            .join(Member, (Member.conversation_id == Message.conversation_id) & (Member.person_id == person_id))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(func.to_tsvector("simple", Message.body).op("@@")(query), Message.deleted_at.is_(None)))
    if cursor:
        try:
            before = UUID(_plain(cursor))
        except ValueError:
            raise InvalidInput("The cursor is not valid.", field="cursor")
        stmt = stmt.where(Message.id < before)
    rows = (await session.execute(stmt.order_by(Message.id.desc()).limit(limit + 1))).all()
    items = [public(m) | {"conversation_title": title} for m, title in rows[:limit]]
    next_cursor = base64.urlsafe_b64encode(str(rows[limit - 1][0].id).encode()).decode() if len(rows) > limit else None
    return items, next_cursor


def _plain(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("cursor")
