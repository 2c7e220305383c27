"""What people do with a post they can read: comments, reactions, bookmarks, votes, best answers, views.

Every function starts from `service.get_readable`, so the one visibility rule guards each of them (an
unreadable or deleted post is a 404). Counters on the post change in the same transaction as the rows.
"""

from datetime import date
from uuid import UUID

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.content.models import (Bookmark, Comment, CommentEdit, CommentReaction, PollOption, PollVote, Post,
                                           PostView, Reaction)
from services.posts.content.schemas import CommentCreate, CommentPublic, CommentUpdate
from services.posts.content.service import (excerpt, get_readable, poll_closed, readable_by, readers_among,
                                            resolve_mentions)
from services.posts.groups import service as groups
from services.posts.people.api import Person, PersonSummary
from shared.auth import CurrentUser
from shared.db import utcnow
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.events import (BestAnswerAccepted, CommentCreated, CommentDeleted, CommentReactionAdded,
                           CommentReactionRemoved, CommentUpdated, PollVoted, PostBookmarked, PostViewed,
                           ReactionAdded, ReactionRemoved)
from shared.markdown import render
from shared.outbox import add_event
from shared.pagination import PageParams, paginate


class CommentNotFound(NotFound):
    code, title = "comment-not-found", "Comment not found"


class NotCommentAuthor(Forbidden):
    code, title = "not-comment-author", "Only the comment's author can do this"


class RepliesAreOneLevel(InvalidInput):
    code, title = "replies-one-level", "Replies are to top-level comments"


class NotAPoll(Conflict):
    code, title = "not-a-poll", "This post is not a poll"


class PollClosed(Conflict):
    code, title = "poll-closed", "The poll is closed"


class InvalidVote(InvalidInput):
    code, title = "invalid-vote", "Invalid vote"


class NotAQuestion(Conflict):
    code, title = "not-a-question", "This post is not a question"


class CannotAcceptAnswer(Forbidden):
    code, title = "cannot-accept-answer", "Only the question's author or the group's admins accept answers"


# --- comments -------------------------------------------------------------------------------------

async def _comment_of(session: AsyncSession, *, post: Post, comment_id: UUID, for_update: bool = False) -> Comment:
    stmt = select(Comment).where(Comment.id == comment_id, Comment.post_id == post.id, Comment.deleted_at.is_(None))
    comment = await session.scalar(stmt.with_for_update() if for_update else stmt)
    if comment is None:
        raise CommentNotFound()
    return comment


async def create_comment(session: AsyncSession, *, post_id: UUID, data: CommentCreate, user: CurrentUser) -> Comment:
    """Comment on a post, or reply to a top-level comment; mentions reach only the post's readers."""
    post = await get_readable(session, post_id=post_id, user=user)
    parent = None
    if data.parent_id is not None:
        parent = await _comment_of(session, post=post, comment_id=data.parent_id)
        if parent.parent_id is not None:
            raise RepliesAreOneLevel(field="parent_id")
    mentioned, group_mentions = await resolve_mentions(session, body=data.body, user=user)
    comment = Comment(post_id=post.id, parent_id=data.parent_id, author_id=user.id, body=data.body,
                      body_html=render(data.body), mentions=[p.id for p in mentioned], group_mentions=group_mentions)
    session.add(comment)
    await session.execute(update(Post).where(Post.id == post.id).values(comment_count=Post.comment_count + 1))
    await session.flush()
    readers = [p for p in await readers_among(session, post, comment.mentions) if p != user.id]
    await add_event(session, CommentCreated(
        comment_id=comment.id, post_id=post.id, post_author_id=post.author_id, author_id=user.id,
        parent_id=comment.parent_id, parent_author_id=parent.author_id if parent else None,
        excerpt=excerpt(comment.body), mentions=readers, created_at=comment.created_at),
        subject=post.id, actor=user.id)
    return comment


async def present_comments(session: AsyncSession, *, comments: list[Comment], user: CurrentUser) -> list[CommentPublic]:
    """Comments (of a post `user` may read) with their authors, reaction counts by kind and the caller's reaction.

    Two queries for any number of comments."""
    counts: dict = {}
    mine: dict = {}
    authors: dict = {}
    if comments:
        authors = {p.id: PersonSummary.model_validate(p) for p in await session.scalars(
            select(Person).where(Person.id.in_({c.author_id for c in comments})))}
        rows = await session.execute(
            select(CommentReaction.comment_id, CommentReaction.kind, func.count(),
                   func.bool_or(CommentReaction.person_id == user.id))
            .where(CommentReaction.comment_id.in_([c.id for c in comments]))
            .group_by(CommentReaction.comment_id, CommentReaction.kind))
        for comment_id, kind, n, is_mine in rows:
            counts.setdefault(comment_id, {})[kind] = n
            if is_mine:
                mine[comment_id] = kind
    return [CommentPublic.model_validate(c).model_copy(update={
        "author": authors.get(c.author_id), "reaction_counts": counts.get(c.id, {}), "my_reaction": mine.get(c.id)})
        for c in comments]


async def list_comments(session: AsyncSession, *, post_id: UUID, user: CurrentUser,
                        page: PageParams) -> tuple[list[CommentPublic], str | None]:
    """Comments and replies, oldest first (a reply carries its parent_id)."""
    post = await get_readable(session, post_id=post_id, user=user)
    stmt = select(Comment).where(Comment.post_id == post.id, Comment.deleted_at.is_(None))
    comments, cursor = await paginate(session, stmt, columns=[Comment.created_at, Comment.id], page=page,
                                      descending=False)
    return await present_comments(session, comments=comments, user=user), cursor


async def edit_comment(session: AsyncSession, *, post_id: UUID, comment_id: UUID, data: CommentUpdate,
                       user: CurrentUser) -> Comment:
    """The author edits; the text before is kept as a version everyone who reads the comment can see."""
    post = await get_readable(session, post_id=post_id, user=user)
    comment = await _comment_of(session, post=post, comment_id=comment_id, for_update=True)
    if comment.author_id != user.id:
        raise NotCommentAuthor()
    session.add(CommentEdit(comment_id=comment.id, version=comment.version, body=comment.body, edited_by=user.id))
    mentioned, comment.group_mentions = await resolve_mentions(session, body=data.body, user=user)
    comment.body, comment.body_html, comment.edited_at = data.body, render(data.body), utcnow()
    comment.mentions = [p.id for p in mentioned]
    comment.version += 1
    await session.flush()
    await add_event(session, CommentUpdated(comment_id=comment.id, post_id=post.id, author_id=comment.author_id,
                                            excerpt=excerpt(comment.body), version=comment.version),
                    subject=post.id, actor=user.id)
    return comment


async def comment_history(session: AsyncSession, *, post_id: UUID, comment_id: UUID,
                          user: CurrentUser) -> list[CommentEdit]:
    """Earlier versions of a comment the caller may read, newest first."""
    comment = await get_comment(session, post_id=post_id, comment_id=comment_id, user=user)
    return list(await session.scalars(select(CommentEdit).where(CommentEdit.comment_id == comment.id)
                                      .order_by(CommentEdit.version.desc())))


async def get_comment(session: AsyncSession, *, post_id: UUID, comment_id: UUID, user: CurrentUser) -> Comment:
    """A comment on a post the caller may read; 404 otherwise (also when deleted)."""
    post = await get_readable(session, post_id=post_id, user=user)
    return await _comment_of(session, post=post, comment_id=comment_id)


async def delete_comment(session: AsyncSession, *, post_id: UUID, comment_id: UUID, user: CurrentUser) -> None:
    """Soft delete by the comment's author or a moderator."""
    post = await get_readable(session, post_id=post_id, user=user)
    comment = await _comment_of(session, post=post, comment_id=comment_id, for_update=True)
    if comment.author_id != user.id and not user.has_role("moderator"):
        raise NotCommentAuthor("Only the comment's author or a moderator can delete it.")
    comment.deleted_at = utcnow()
    await session.execute(update(Post).where(Post.id == post.id).values(comment_count=Post.comment_count - 1))
    if post.best_answer_id == comment.id:
        post.best_answer_id = None
    await add_event(session, CommentDeleted(comment_id=comment.id, post_id=post.id, author_id=comment.author_id,
                                            deleted_by=user.id), subject=post.id, actor=user.id)


# --- reactions and bookmarks -----------------------------------------------------------------------

async def _set_reaction(session: AsyncSession, *, target, target_id: UUID, kind: str,
                        user: CurrentUser) -> tuple[bool, str | None]:
    """The caller's one reaction on a post or comment (`target`: Reaction.post_id or CommentReaction.comment_id).

    Returns whether it changed and the kind it replaced."""
    model = target.class_
    previous = await session.scalar(select(model.kind).where(target == target_id, model.person_id == user.id)
                                    .with_for_update())
    if previous == kind:
        return False, previous
    await session.execute(insert(model).values({target.key: target_id, "person_id": user.id, "kind": kind,
                                                "created_at": utcnow()})
                          .on_conflict_do_update(index_elements=[target, model.person_id], set_={"kind": kind}))
    return True, previous


async def _remove_reaction(session: AsyncSession, *, target, target_id: UUID, user: CurrentUser) -> str | None:
    """The kind of the caller's reaction removed from a post or comment, None if there was none."""
    model = target.class_
    return await session.scalar(delete(model).where(target == target_id, model.person_id == user.id)
                                .returning(model.kind))


async def react(session: AsyncSession, *, post_id: UUID, kind: str, user: CurrentUser) -> None:
    """Set the caller's reaction (one per post; a new kind replaces the old one). Repeating changes nothing."""
    post = await get_readable(session, post_id=post_id, user=user)
    changed, previous = await _set_reaction(session, target=Reaction.post_id, target_id=post.id, kind=kind, user=user)
    if not changed:
        return
    if previous is None:
        await session.execute(update(Post).where(Post.id == post.id).values(reaction_count=Post.reaction_count + 1))
    await add_event(session, ReactionAdded(post_id=post.id, post_author_id=post.author_id, person_id=user.id,
                                           kind=kind, previous_kind=previous), subject=post.id, actor=user.id)


async def unreact(session: AsyncSession, *, post_id: UUID, user: CurrentUser) -> None:
    post = await get_readable(session, post_id=post_id, user=user)
    kind = await _remove_reaction(session, target=Reaction.post_id, target_id=post.id, user=user)
    if kind is None:
        return
    await session.execute(update(Post).where(Post.id == post.id).values(reaction_count=Post.reaction_count - 1))
    await add_event(session, ReactionRemoved(post_id=post.id, post_author_id=post.author_id, person_id=user.id,
                                             kind=kind), subject=post.id, actor=user.id)


async def react_to_comment(session: AsyncSession, *, post_id: UUID, comment_id: UUID, kind: str,
                           user: CurrentUser) -> Comment:
    """Set the caller's reaction on a comment of a post they may read (one per comment, as on posts)."""
    comment = await get_comment(session, post_id=post_id, comment_id=comment_id, user=user)
    changed, previous = await _set_reaction(session, target=CommentReaction.comment_id, target_id=comment.id,
                                            kind=kind, user=user)
    if changed:
        await add_event(session, CommentReactionAdded(
            comment_id=comment.id, post_id=comment.post_id, comment_author_id=comment.author_id, person_id=user.id,
            kind=kind, previous_kind=previous, excerpt=excerpt(comment.body)), subject=comment.post_id, actor=user.id)
    return comment


async def unreact_to_comment(session: AsyncSession, *, post_id: UUID, comment_id: UUID, user: CurrentUser) -> Comment:
    comment = await get_comment(session, post_id=post_id, comment_id=comment_id, user=user)
    kind = await _remove_reaction(session, target=CommentReaction.comment_id, target_id=comment.id, user=user)
    if kind is not None:
        await add_event(session, CommentReactionRemoved(
            comment_id=comment.id, post_id=comment.post_id, comment_author_id=comment.author_id, person_id=user.id,
            kind=kind), subject=comment.post_id, actor=user.id)
    return comment


async def set_bookmark(session: AsyncSession, *, post_id: UUID, user: CurrentUser, on: bool) -> None:
    post = await get_readable(session, post_id=post_id, user=user)
    if on:
        changed = await session.scalar(insert(Bookmark).values(person_id=user.id, post_id=post.id, created_at=utcnow())
                                       .on_conflict_do_nothing().returning(Bookmark.post_id))
    else:
        changed = await session.scalar(delete(Bookmark).where(Bookmark.person_id == user.id,
                                                              Bookmark.post_id == post.id).returning(Bookmark.post_id))
    if changed is not None:
        await add_event(session, PostBookmarked(post_id=post.id, person_id=user.id, bookmarked=on), subject=post.id,
                        actor=user.id)


# --- polls and questions ---------------------------------------------------------------------------

async def vote(session: AsyncSession, *, post_id: UUID, option_ids: list[UUID], user: CurrentUser) -> Post:
    """Vote (or change one's vote) in an open poll: one option, or several when the poll allows it."""
    post = await get_readable(session, post_id=post_id, user=user, for_update=True)
    if post.kind != "poll":
        raise NotAPoll()
    if poll_closed(post, utcnow()):
        raise PollClosed()
    chosen = list(dict.fromkeys(option_ids))
    if len(chosen) > 1 and not post.poll_multiple:
        raise InvalidVote("This poll takes one option.", field="option_ids")
    valid = set(await session.scalars(select(PollOption.id).where(PollOption.post_id == post.id,
                                                                  PollOption.id.in_(chosen))))
    if len(valid) != len(chosen):
        raise InvalidVote("Unknown option for this poll.", field="option_ids")
    previous = list(await session.scalars(delete(PollVote).where(PollVote.post_id == post.id,
                                                                 PollVote.person_id == user.id)
                                          .returning(PollVote.option_id)))
    if previous:
        await session.execute(update(PollOption).where(PollOption.id.in_(previous))
                              .values(vote_count=PollOption.vote_count - 1))
    session.add_all([PollVote(option_id=o, person_id=user.id, post_id=post.id) for o in chosen])
    await session.execute(update(PollOption).where(PollOption.id.in_(chosen))
                          .values(vote_count=PollOption.vote_count + 1))
    await add_event(session, PollVoted(post_id=post.id, post_author_id=post.author_id, person_id=user.id,
                                       option_ids=chosen), subject=post.id, actor=user.id)
    return post


async def accept_answer(session: AsyncSession, *, post_id: UUID, comment_id: UUID, user: CurrentUser) -> Post:
    """The question's author, or an admin of the group it was asked in, accepts a comment as the answer."""
    post = await get_readable(session, post_id=post_id, user=user, for_update=True)
    if post.kind != "question":
        raise NotAQuestion()
    allowed = post.author_id == user.id
    if not allowed and post.group_id is not None:
        group = await groups.get_or_raise(session, group_id=post.group_id)
        allowed = (await groups.access(session, group=group, user=user)).can_manage
    if not allowed:
        raise CannotAcceptAnswer()
    comment = await _comment_of(session, post=post, comment_id=comment_id)
    if post.best_answer_id != comment.id:
        post.best_answer_id = comment.id
        await add_event(session, BestAnswerAccepted(post_id=post.id, comment_id=comment.id,
                                                    answer_author_id=comment.author_id, accepted_by=user.id),
                        subject=post.id, actor=user.id)
    return post


# --- views -----------------------------------------------------------------------------------------

async def record_views(session: AsyncSession, *, post_ids: list[UUID], user: CurrentUser,
                       today: date | None = None) -> int:
    """Impressions from a client: the first one per person, post and UTC day counts; others are ignored.

    Posts the caller cannot read, and their own posts, are skipped silently (a batch is not an error)."""
    today = today or utcnow().date()
    readable = dict((await session.execute(select(Post.id, Post.author_id).where(
        Post.id.in_(set(post_ids)), Post.author_id != user.id, readable_by(user.id)))).all())
    if not readable:
        return 0
    new = list(await session.scalars(insert(PostView).values(
        [{"post_id": p, "person_id": user.id, "day": today} for p in sorted(readable)])
        .on_conflict_do_nothing().returning(PostView.post_id)))
    if new:
        earlier = exists().where(PostView.post_id == Post.id, PostView.person_id == user.id, PostView.day < today)
        # seen-by counts people, not days: only a first view ever adds one
        await session.execute(update(Post).where(Post.id.in_(new), ~earlier)
                              .values(seen_by_count=Post.seen_by_count + 1))
    for post_id in new:
        await add_event(session, PostViewed(post_id=post_id, person_id=user.id, author_id=readable[post_id],
                                            day=today), subject=post_id, actor=user.id)
    return len(new)


