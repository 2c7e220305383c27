"""Conversations and their members: who may read and write, and read state."""

from uuid import UUID

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.messaging.conversations.models import (MAX_MEMBERS, RECEIPTS_MAX_MEMBERS, Conversation, Member,
                                                      Preference)
from services.messaging.messages.models import Message
from services.messaging.realtime.service import publish
from shared.db import utcnow
from shared.directory import directory_people
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.events.messaging import (ConversationCreated, ConversationMemberAdded, ConversationMemberRemoved,
                                     ConversationMemberRoleChanged, ConversationRead, ConversationUpdated)
from shared.pagination import PageParams, decode_cursor, encode_cursor


class ConversationNotFound(NotFound):
    code, title = "conversation-not-found", "Conversation not found"


class NotAConversationAdmin(Forbidden):
    code, title = "not-a-conversation-admin", "Only the conversation's admins may do this"


class PersonNotAvailable(InvalidInput):
    code, title = "person-not-available", "Person not available"


class TooManyMembers(Conflict):
    code, title = "too-many-members", "Too many members"


class NotAGroup(Conflict):
    code, title = "not-a-group", "Direct conversations have no members to manage"


class MessageNotFound(NotFound):
    code, title = "message-not-found", "Message not found"


class MemberNotFound(NotFound):
    code, title = "member-not-found", "Member not found"


def receipts_shown(conversation: Conversation, policy: str) -> bool:
    return policy != "off" and conversation.member_count <= RECEIPTS_MAX_MEMBERS


async def require_active(session: AsyncSession, person_ids: list[UUID]) -> None:
    """Only people the directory knows as active can join a conversation."""
    wanted = set(person_ids)
    if not wanted:
        return
    active = set(await session.scalars(select(directory_people.c.id).where(
        directory_people.c.id.in_(wanted), directory_people.c.active.is_(True))))
    missing = wanted - active
    if missing:
        raise PersonNotAvailable("These people are unknown or deactivated.", person_ids=sorted(map(str, missing)))


async def get_membership_or_raise(session: AsyncSession, *, conversation_id: UUID, person_id: UUID,
                                  lock: bool = False) -> tuple[Conversation, Member]:
    """The conversation and the caller's membership; anyone else is told it does not exist (no BOLA)."""
    stmt = (select(Conversation, Member).join(Member, Member.conversation_id == Conversation.id)
            .where(Conversation.id == conversation_id, Member.person_id == person_id))
    if lock:
        stmt = stmt.with_for_update(of=Conversation)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise ConversationNotFound()
    return row[0], row[1]


async def member_ids(session: AsyncSession, conversation_id: UUID) -> list[UUID]:
    return list(await session.scalars(select(Member.person_id).where(Member.conversation_id == conversation_id)))


def conversation_frame(conversation: Conversation) -> dict:
    return {"id": str(conversation.id), "kind": conversation.kind, "title": conversation.title,
            "member_count": conversation.member_count}


async def create_group(session: AsyncSession, *, creator_id: UUID, title: str, member_ids: list[UUID]) -> Conversation:
    people = list(dict.fromkeys([creator_id, *member_ids]))
    if len(people) > MAX_MEMBERS:
        raise TooManyMembers(f"A conversation has at most {MAX_MEMBERS} members.")
    await require_active(session, [p for p in people if p != creator_id])
    conversation = Conversation(kind="group", title=title, created_by=creator_id, member_count=len(people))
    session.add(conversation)
    await session.flush()
    session.add_all([Member(conversation_id=conversation.id, person_id=p, role="admin" if p == creator_id else "member")
                     for p in people])
    await session.flush()
    await publish(session, ConversationCreated(conversation_id=conversation.id, kind="group", title=title,
                                               creator_id=creator_id, member_ids=people, recipients=people),
                  kind="conversation.created", data=conversation_frame(conversation), subject=conversation.id,
                  actor=creator_id)
    return conversation


async def get_or_create_direct(session: AsyncSession, *, me: UUID, other: UUID) -> Conversation:
    """The one conversation of a pair, created on first use (both people must be active)."""
    if me == other:
        raise InvalidInput("A direct conversation is between two people.", field="person_id")
    key = ":".join(sorted([str(me), str(other)]))
    existing = await session.scalar(select(Conversation).where(Conversation.direct_key == key))
    if existing is not None:
        return existing
    await require_active(session, [other])
    conversation_id = await session.scalar(
        insert(Conversation).values(id=uuid7(), kind="direct", direct_key=key, created_by=me, member_count=2,
                                    created_at=utcnow(), last_message_at=utcnow(), last_seq=0)
        .on_conflict_do_nothing(index_elements=[Conversation.direct_key]).returning(Conversation.id))
    if conversation_id is None:  # created concurrently by the other person
        return await session.scalar(select(Conversation).where(Conversation.direct_key == key))
    session.add_all([Member(conversation_id=conversation_id, person_id=p, role="member") for p in (me, other)])
    await session.flush()
    conversation = await session.get(Conversation, conversation_id)
    await publish(session, ConversationCreated(conversation_id=conversation_id, kind="direct", creator_id=me,
                                               member_ids=[me, other], recipients=[me, other]),
                  kind="conversation.created", data=conversation_frame(conversation), subject=conversation_id, actor=me)
    return conversation


def _require_group_admin(conversation: Conversation, member: Member) -> None:
    if conversation.kind != "group":
        raise NotAGroup()
    if member.role != "admin":
        raise NotAConversationAdmin()


async def update(session: AsyncSession, *, conversation_id: UUID, actor_id: UUID, title: str) -> Conversation:
    conversation, member = await get_membership_or_raise(session, conversation_id=conversation_id, person_id=actor_id,
                                                         lock=True)
    _require_group_admin(conversation, member)
    conversation.title = title
    await session.flush()
    recipients = await member_ids(session, conversation_id)
    await publish(session, ConversationUpdated(conversation_id=conversation_id, title=title, recipients=recipients),
                  kind="conversation.updated", data=conversation_frame(conversation), subject=conversation_id,
                  actor=actor_id)
    return conversation


async def add_members(session: AsyncSession, *, conversation_id: UUID, actor_id: UUID,
                      person_ids: list[UUID]) -> Conversation:
    conversation, member = await get_membership_or_raise(session, conversation_id=conversation_id, person_id=actor_id,
                                                         lock=True)
    _require_group_admin(conversation, member)
    present = set(await member_ids(session, conversation_id))
    new = [p for p in dict.fromkeys(person_ids) if p not in present]
    if len(present) + len(new) > MAX_MEMBERS:
        raise TooManyMembers(f"A conversation has at most {MAX_MEMBERS} members.")
    await require_active(session, new)
    session.add_all([Member(conversation_id=conversation_id, person_id=p, role="member",
                            last_read_seq=conversation.last_seq) for p in new])
    conversation.member_count = len(present) + len(new)
    await session.flush()
    recipients = sorted(present | set(new))
    for person_id in new:
        await publish(session, ConversationMemberAdded(conversation_id=conversation_id, person_id=person_id,
                                                       role="member", recipients=recipients),
                      kind="conversation.member_added",
                      data={"conversation": conversation_frame(conversation), "person_id": str(person_id)},
                      subject=conversation_id, actor=actor_id)
    return conversation


async def remove_member(session: AsyncSession, *, conversation_id: UUID, actor_id: UUID, person_id: UUID) -> None:
    """An admin removes someone, or anyone leaves; from the commit on, they read and receive nothing of it."""
    conversation, member = await get_membership_or_raise(session, conversation_id=conversation_id, person_id=actor_id,
                                                         lock=True)
    if conversation.kind != "group":
        raise NotAGroup()
    if person_id != actor_id and member.role != "admin":
        raise NotAConversationAdmin()
    target = await session.get(Member, (conversation_id, person_id))
    if target is None:
        raise MemberNotFound()
    await session.delete(target)
    conversation.member_count -= 1
    await session.flush()
    remaining = await member_ids(session, conversation_id)
    if remaining and target.role == "admin" and not await session.scalar(
            select(Member.person_id).where(Member.conversation_id == conversation_id, Member.role == "admin")):
        # The last admin left: the longest-standing member takes over, so the group stays manageable.
        heir = await session.scalar(select(Member).where(Member.conversation_id == conversation_id)
                                    .order_by(Member.joined_at, Member.person_id).limit(1))
        heir.role = "admin"
    await publish(session, ConversationMemberRemoved(conversation_id=conversation_id, person_id=person_id,
                                                     left=person_id == actor_id, recipients=sorted({*remaining, person_id})),
                  kind="conversation.member_removed",
                  data={"conversation_id": str(conversation_id), "person_id": str(person_id),
                        "left": person_id == actor_id},
                  subject=conversation_id, actor=actor_id)


async def set_role(session: AsyncSession, *, conversation_id: UUID, actor_id: UUID, person_id: UUID,
                   role: str) -> Member:
    conversation, member = await get_membership_or_raise(session, conversation_id=conversation_id, person_id=actor_id,
                                                         lock=True)
    _require_group_admin(conversation, member)
    target = await session.get(Member, (conversation_id, person_id))
    if target is None:
        raise MemberNotFound()
    if target.role == "admin" and role == "member" and await session.scalar(
            select(func.count()).where(Member.conversation_id == conversation_id, Member.role == "admin")) <= 1:
        raise Conflict("A group keeps at least one admin.")
    target.role = role
    await session.flush()
    recipients = await member_ids(session, conversation_id)
    await publish(session, ConversationMemberRoleChanged(conversation_id=conversation_id, person_id=person_id,
                                                         role=role, recipients=recipients),
                  kind="conversation.member_role_changed",
                  data={"conversation_id": str(conversation_id), "person_id": str(person_id), "role": role},
                  subject=conversation_id, actor=actor_id)
    return target


def _unread_expr(person_id: UUID):
    return (select(func.count()).select_from(Message)
            .where(Message.conversation_id == Member.conversation_id, Message.seq > Member.last_read_seq,
                   Message.sender_id != person_id, Message.deleted_at.is_(None))
            .correlate(Member).scalar_subquery())


async def get_all(session: AsyncSession, *, person_id: UUID, page: PageParams, policy: str) -> tuple[list[dict], str | None]:
    """The person's conversations, most recent activity first, each with its unread count."""
    stmt = (select(Conversation, Member, _unread_expr(person_id).label("unread"))
            .join(Member, and_(Member.conversation_id == Conversation.id, Member.person_id == person_id)))
    columns = [Conversation.last_message_at, Conversation.id]
    if page.cursor:
        values = decode_cursor(page.cursor, columns)
        stmt = stmt.where(tuple_(Conversation.last_message_at, Conversation.id) < tuple_(*values))
    rows = (await session.execute(stmt.order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                                  .limit(page.limit + 1))).all()
    items = [public(c, m, unread=u, policy=policy) for c, m, u in rows[: page.limit]]
    next_cursor = None
    if len(rows) > page.limit:
        last = rows[page.limit - 1][0]
        next_cursor = encode_cursor([last.last_message_at, last.id])
    return items, next_cursor


def public(conversation: Conversation, member: Member, *, unread: int = 0, policy: str) -> dict:
    return {"id": conversation.id, "kind": conversation.kind, "title": conversation.title,
            "created_by": conversation.created_by, "created_at": conversation.created_at,
            "last_message_at": conversation.last_message_at, "member_count": conversation.member_count,
            "unread": unread, "my_role": member.role, "last_read_message_id": member.last_read_message_id,
            "receipts": receipts_shown(conversation, policy)}


async def get_detail(session: AsyncSession, *, conversation_id: UUID, person_id: UUID, policy: str) -> dict:
    conversation, member = await get_membership_or_raise(session, conversation_id=conversation_id, person_id=person_id)
    unread = await session.scalar(select(_unread_expr(person_id)).select_from(Member).where(
        Member.conversation_id == conversation_id, Member.person_id == person_id))
    members = list(await session.scalars(select(Member).where(Member.conversation_id == conversation_id)
                                         .order_by(Member.joined_at, Member.person_id)))
    visible = await _receipt_visible(session, conversation, policy, [m.person_id for m in members])
    return public(conversation, member, unread=unread, policy=policy) | {"members": [
        {"person_id": m.person_id, "role": m.role, "joined_at": m.joined_at,
         "last_read_message_id": m.last_read_message_id if (m.person_id == person_id or m.person_id in visible)
         else None} for m in members]}


async def _receipt_visible(session: AsyncSession, conversation: Conversation, policy: str,
                           people: list[UUID]) -> set[UUID]:
    """Whose read markers others may see here: nobody when off or too big; under user_choice, who agreed."""
    if not receipts_shown(conversation, policy):
        return set()
    if policy == "everyone":
        return set(people)
    refused = set(await session.scalars(select(Preference.person_id).where(
        Preference.person_id.in_(people), Preference.read_receipts.is_(False))))
    return set(people) - refused


async def unread_total(session: AsyncSession, *, person_id: UUID) -> dict:
    counts = (select(_unread_expr(person_id).label("n")).select_from(Member)
              .where(Member.person_id == person_id).subquery())
    row = (await session.execute(select(func.coalesce(func.sum(counts.c.n), 0),
                                        func.count().filter(counts.c.n > 0)))).one()
    return {"unread": int(row[0]), "conversations": int(row[1])}


async def mark_read(session: AsyncSession, *, conversation_id: UUID, person_id: UUID, message_id: UUID,
                    policy: str) -> Member:
    """Move the reader's marker forward (never back); receipts go to the others only when the policy allows."""
    conversation, member = await get_membership_or_raise(session, conversation_id=conversation_id, person_id=person_id)
    message = await session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        raise MessageNotFound()
    if message.seq <= member.last_read_seq:
        return member
    member.last_read_seq, member.last_read_message_id, member.last_read_at = message.seq, message.id, utcnow()
    await session.flush()
    everyone = await member_ids(session, conversation_id)
    recipients = {person_id}  # the reader's other devices always learn it
    if person_id in await _receipt_visible(session, conversation, policy, [person_id]):
        recipients |= set(everyone)
    await publish(session, ConversationRead(conversation_id=conversation_id, person_id=person_id,
                                            last_read_message_id=message.id, recipients=sorted(recipients)),
                  kind="conversation.read",
                  data={"conversation_id": str(conversation_id), "person_id": str(person_id),
                        "last_read_message_id": str(message.id), "seq": message.seq},
                  subject=conversation_id, actor=person_id)
    return member


async def get_preferences(session: AsyncSession, *, person_id: UUID) -> dict:
    pref = await session.get(Preference, person_id)
    return {"read_receipts": pref.read_receipts if pref else True}


async def set_preferences(session: AsyncSession, *, person_id: UUID, read_receipts: bool) -> dict:
    await session.execute(insert(Preference).values(person_id=person_id, read_receipts=read_receipts)
                          .on_conflict_do_update(index_elements=[Preference.person_id],
                                                 set_={"read_receipts": read_receipts}))
    return {"read_receipts": read_receipts}

