"""Keeping the audience read models (groups, members, posts, reactions) from social.v1."""

from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.audience.models import CommentReaction, GroupMember, KnownGroup, KnownPost, PostReaction
from shared.events import GroupSnapshot

ADMIN_ROLES = ("owner", "admin")


async def upsert_group(session: AsyncSession, group: GroupSnapshot) -> None:
    values = dict(id=group.id, name=group.name[:200], visibility=group.visibility, all_company=group.all_company,
                  archived=group.archived, updated_at=group.updated_at)
    stmt = insert(KnownGroup).values(**values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[KnownGroup.id], set_=values,
                                                     where=KnownGroup.updated_at <= stmt.excluded.updated_at))


async def set_member(session: AsyncSession, *, group_id: UUID, person_id: UUID, role: str) -> None:
    stmt = insert(GroupMember).values(group_id=group_id, person_id=person_id, role=role)
    await session.execute(stmt.on_conflict_do_update(index_elements=[GroupMember.group_id, GroupMember.person_id],
                                                     set_={"role": role}))


async def remove_member(session: AsyncSession, *, group_id: UUID, person_id: UUID) -> None:
    await session.execute(delete(GroupMember).where(GroupMember.group_id == group_id,
                                                    GroupMember.person_id == person_id))


async def get_group(session: AsyncSession, group_id: UUID | None) -> KnownGroup | None:
    return await session.get(KnownGroup, group_id) if group_id else None


async def group_admins(session: AsyncSession, group_id: UUID) -> list[UUID]:
    return list(await session.scalars(select(GroupMember.person_id).where(GroupMember.group_id == group_id,
                                                                          GroupMember.role.in_(ADMIN_ROLES))))


async def remember_post(session: AsyncSession, *, post_id: UUID, author_id: UUID, kind: str, audience: str,
                        group_id: UUID | None, excerpt: str, created_at) -> None:
    await session.execute(insert(KnownPost).values(
        id=post_id, author_id=author_id, kind=kind, audience=audience, group_id=group_id, excerpt=excerpt[:300],
        created_at=created_at).on_conflict_do_nothing())


async def forget_post(session: AsyncSession, post_id: UUID) -> None:
    await session.execute(delete(PostReaction).where(PostReaction.post_id == post_id))
    await session.execute(delete(CommentReaction).where(CommentReaction.post_id == post_id))
    await session.execute(delete(KnownPost).where(KnownPost.id == post_id))


async def count_comment(session: AsyncSession, post_id: UUID, delta: int) -> None:
    await session.execute(update(KnownPost).where(KnownPost.id == post_id)
                          .values(comments=func.greatest(KnownPost.comments + delta, 0)))


async def set_reaction(session: AsyncSession, *, post_id: UUID, person_id: UUID,
                       present: bool) -> tuple[int, list[UUID]]:
    """Record or remove one person's reaction; returns (reactors, the newest three) of the post."""
    if present:
        await session.execute(insert(PostReaction).values(post_id=post_id, person_id=person_id)
                              .on_conflict_do_nothing())
    else:
        await session.execute(delete(PostReaction).where(PostReaction.post_id == post_id,
                                                         PostReaction.person_id == person_id))
    total = await session.scalar(select(func.count()).select_from(PostReaction).where(PostReaction.post_id == post_id))
    newest = list(await session.scalars(select(PostReaction.person_id).where(PostReaction.post_id == post_id)
                                        .order_by(PostReaction.created_at.desc()).limit(3)))
    await session.execute(update(KnownPost).where(KnownPost.id == post_id).values(reactions=total))
    return total, newest


async def set_comment_reaction(session: AsyncSession, *, comment_id: UUID, post_id: UUID, person_id: UUID,
                               present: bool) -> tuple[int, list[UUID]]:
    """Record or remove one person's reaction on a comment; returns (reactors, the newest three) of the comment."""
    if present:
        await session.execute(insert(CommentReaction).values(comment_id=comment_id, person_id=person_id,
                                                             post_id=post_id).on_conflict_do_nothing())
    else:
        await session.execute(delete(CommentReaction).where(CommentReaction.comment_id == comment_id,
                                                            CommentReaction.person_id == person_id))
    total = await session.scalar(select(func.count()).select_from(CommentReaction)
                                 .where(CommentReaction.comment_id == comment_id))
    newest = list(await session.scalars(select(CommentReaction.person_id)
                                        .where(CommentReaction.comment_id == comment_id)
                                        .order_by(CommentReaction.created_at.desc()).limit(3)))
    return total, newest


async def forget_comment(session: AsyncSession, comment_id: UUID) -> None:
    await session.execute(delete(CommentReaction).where(CommentReaction.comment_id == comment_id))
