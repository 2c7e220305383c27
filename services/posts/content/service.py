"""Posts: the one visibility rule, publishing, editing, deleting and presenting posts.

Visibility (who may read a post) is decided in exactly one place, `readable_by`, a SQL condition on the
posts table for a viewer (a constant id or a column such as `Person.id`). `can_read`, `readers_among`,
feeds, counts, comments, reactions, polls, views and attachments all go through it:
- a deleted post is readable by nobody;
- the author always reads their own post;
- a group post is for the group's readers (anyone for a public group, members otherwise), whoever wrote it;
- any other post is for everyone, unless it is followers-only or its author's account is protected: then
  only approved followers read it.
"""

import re
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import (ColumnElement, Select, and_, any_, bindparam, exists, func, literal, not_, or_, select, type_coerce,
                        update)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.sqltypes import NullType

from services.posts.attachments.models import Attachment
from services.posts.content.models import Acknowledgement, Bookmark, PollOption, PollVote, Post, PostEdit, Reaction
from services.posts.content.schemas import (
    REACTION_KINDS,
    AttachmentSummary,
    PollOptionPublic,
    PollPublic,
    PostCreate,
    PostPublic,
    PostUpdate,
)
from services.posts.graph.models import Follow
from services.posts.groups import service as groups
from services.posts.groups.models import Group, GroupMember
from services.posts.people import api as people
from services.posts.people.api import Person
from shared.auth import CurrentUser
from shared.context import client_var
from shared.db import utcnow
from shared.errors import Forbidden, InvalidInput, NotFound
from shared.events import PostCreated, PostDeleted, PostUpdated, PraiseGiven
from shared.markdown import parse_mentions, render
from shared.outbox import add_event

HASHTAG = re.compile(r"(?<![\w#&])#(\w{1,100})", re.UNICODE)
EXCERPT_CHARS = 280


class PostNotFound(NotFound):
    code, title = "post-not-found", "Post not found"


class NotPostAuthor(Forbidden):
    code, title = "not-post-author", "Only the author can do this"


class AnnouncementNotAllowed(Forbidden):
    code, title = "announcement-not-allowed", "Not allowed to announce"


class InvalidRecipients(InvalidInput):
    code, title = "invalid-recipients", "Unknown or inactive recipients"


class InvalidAttachments(InvalidInput):
    code, title = "invalid-attachments", "Attachments must be your own, not yet used"


def parse_hashtags(body: str) -> list[str]:
    return sorted({t.lower() for t in HASHTAG.findall(body)})


def excerpt(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def group_slug(column):
    """SQL: a group's name as it is @mentioned ("Platform Guild" -> platform-guild)."""
    return func.trim(func.lower(func.regexp_replace(column, "[^a-zA-Z0-9]+", "-", "g")), "-")


async def resolve_group_mentions(session: AsyncSession, *, handles: set[str], user: CurrentUser) -> list[UUID]:
    """Groups @mentioned by their name's slug, among those the author can see (never a secret group of others)."""
    if not handles:
        return []
    visible = or_(Group.visibility != "secret",
                  exists().where(GroupMember.group_id == Group.id, GroupMember.person_id == user.id))
    return list(await session.scalars(select(Group.id).where(group_slug(Group.name).in_(handles), visible,
                                                             Group.archived.is_(False)).order_by(Group.id)))


async def resolve_mentions(session: AsyncSession, *, body: str, user: CurrentUser) -> tuple[list[Person], list[UUID]]:
    """The people and groups @mentioned in `body` (a person's handle wins over a group's slug)."""
    handles = parse_mentions(body)
    mentioned = await people.resolve_handles(session, handles=handles)
    group_ids = await resolve_group_mentions(session, handles=handles - {p.handle for p in mentioned}, user=user)
    return mentioned, group_ids


# --- the visibility rule ---------------------------------------------------------------------------

def readable_by(viewer: Any, post=Post) -> ColumnElement[bool]:
    """SQL: `viewer` (an id or a column) may read `post` (the posts table or an alias of it)."""
    # Explicit correlation: `viewer` may be a column of a query two levels up (readers_among).
    author = aliased(Person)
    author_protected = (select(author.protected).where(author.id == post.author_id)
                        .correlate_except(author).scalar_subquery())
    follows_author = exists().where(Follow.follower_id == viewer, Follow.followee_id == post.author_id
                                    ).correlate_except(Follow)
    is_member = exists().where(GroupMember.group_id == post.group_id, GroupMember.person_id == viewer
                               ).correlate_except(GroupMember)
    group_open = exists().where(Group.id == post.group_id, or_(Group.visibility == "public", is_member)
                                ).correlate_except(Group)
    return and_(post.deleted_at.is_(None), or_(
        post.author_id == viewer,
        and_(post.group_id.is_not(None), group_open),
        and_(post.group_id.is_(None), or_(and_(post.audience != "followers", not_(author_protected)),
                                          follows_author))))


async def readers_among(session: AsyncSession, post: Post, people_ids: list[UUID]) -> list[UUID]:
    """Which of `people_ids` may read `post` (used to keep mentions and notifications from leaking it)."""
    if not people_ids:
        return []
    allowed = set(await session.scalars(select(Person.id).where(
        Person.id.in_(people_ids), exists().where(Post.id == post.id, readable_by(Person.id)))))
    return [p for p in people_ids if p in allowed]


async def can_read(session: AsyncSession, post: Post, user: CurrentUser) -> bool:
    return bool(await session.scalar(select(exists().where(Post.id == post.id, readable_by(user.id)))))


async def get_readable(session: AsyncSession, *, post_id: UUID, user: CurrentUser, for_update: bool = False) -> Post:
    """The post if `user` may read it; 404 otherwise (also when deleted), so existence does not leak."""
    stmt = select(Post).where(Post.id == post_id, readable_by(user.id))
    post = await session.scalar(stmt.with_for_update(of=Post) if for_update else stmt)
    if post is None:
        raise PostNotFound()
    return post


# --- publishing --------------------------------------------------------------------------------------

async def _check_announcer(session: AsyncSession, *, data: PostCreate, user: CurrentUser) -> None:
    """Communications staff and admins announce to anyone; admins of an official group announce in it."""
    if user.has_role("communications"):
        return
    if data.group_id is not None:
        group = await groups.get_or_raise(session, group_id=data.group_id)
        if group.official and (await groups.access(session, group=group, user=user)).can_manage:
            return
    raise AnnouncementNotAllowed("Only communications staff, admins and admins of official groups announce.")


async def _default_audience(session: AsyncSession, author: CurrentUser) -> str:
    """Followers only for a protected account (what its readers already are), else the company."""
    protected = await session.scalar(select(Person.protected).where(Person.id == author.id))
    return "followers" if protected else "company"


# A post's attachments in the order its author listed them (upload order for those from before positions).
ATTACHMENT_ORDER = (Attachment.position, Attachment.created_at, Attachment.id)


async def _attach(session: AsyncSession, *, post: Post, files: list[UUID], cover: UUID | None, owner_id: UUID) -> None:
    """`files` (shown in this order) and `cover` on `post`: each the owner's unused upload or already the post's."""
    ids = set(files) | ({cover} if cover else set())
    if ids:
        order = bindparam("files", list(files), type_=ARRAY(PG_UUID(as_uuid=True)))
        attached = await session.scalars(update(Attachment).where(
            Attachment.id.in_(ids), or_(Attachment.post_id == post.id,
                                        and_(Attachment.post_id.is_(None), Attachment.owner_id == owner_id)))
            .values(post_id=post.id, position=func.array_position(order, Attachment.id)).returning(Attachment.id))
        if len(set(attached)) != len(ids):
            raise InvalidAttachments()
    post.cover_attachment_id = cover


async def _detach_all_but(session: AsyncSession, *, post: Post, keep: set[UUID]) -> None:
    """The post's other attachments become unused uploads again: nobody reads them through the post any more,
    and the orphan sweeper removes them with their files (`attachments.service.sweep_orphans`)."""
    await session.execute(update(Attachment).where(Attachment.post_id == post.id, Attachment.id.not_in(keep))
                          .values(post_id=None, position=None))


async def _files(session: AsyncSession, post: Post) -> list[UUID]:
    """The post's attachments but its cover, in order."""
    return list(await session.scalars(select(Attachment.id).where(
        Attachment.post_id == post.id, Attachment.id.is_distinct_from(post.cover_attachment_id))
        .order_by(*ATTACHMENT_ORDER)))


async def create(session: AsyncSession, *, data: PostCreate, author: CurrentUser) -> Post:
    """Publish a post; mentioned people and praised recipients who can read it are named in its events."""
    if data.group_id is not None:
        await groups.ensure_can_post(session, group=await groups.get_or_raise(session, group_id=data.group_id),
                                     user=author)
    if data.kind == "announcement":
        await _check_announcer(session, data=data, user=author)
    mentioned, group_mentions = await resolve_mentions(session, body=data.body, user=author)
    recipient_ids = list(dict.fromkeys(data.recipients)) or (
        [p.id for p in mentioned if p.id != author.id] if data.kind == "praise" else [])
    found = await people.by_ids(session, person_ids=recipient_ids)
    if len(found) != len(recipient_ids) or not all(p.active for p in found.values()):
        raise InvalidRecipients(field="recipients")
    if data.kind == "praise" and not recipient_ids:
        raise InvalidRecipients("Praise needs recipients (given, or @mentioned).", field="recipients")
    audience = data.audience or await _default_audience(session, author)
    post = Post(author_id=author.id, kind=data.kind, title=data.title, body=data.body, body_html=render(data.body),
                audience=audience, group_id=data.group_id, mentions=[p.id for p in mentioned],
                group_mentions=group_mentions, hashtags=parse_hashtags(data.body), client=client_var.get(),
                recipients=recipient_ids, badge=data.badge,
                pinned_until=data.pinned_until, must_read=data.must_read, remind_at=data.remind_at)
    if data.poll is not None:
        post.poll_multiple, post.poll_closes_at = data.poll.multiple, data.poll.closes_at
    session.add(post)
    await session.flush()
    if data.poll is not None:
        session.add_all([PollOption(post_id=post.id, position=i, label=label)
                         for i, label in enumerate(data.poll.options)])
    await _attach(session, post=post, files=list(dict.fromkeys(data.attachment_ids)), cover=data.cover_attachment_id,
                  owner_id=author.id)
    readers = [p for p in await readers_among(session, post, [p.id for p in mentioned]) if p != author.id]
    await add_event(session, PostCreated(post_id=post.id, author_id=author.id, kind=post.kind, audience=post.audience,
                                         group_id=post.group_id, excerpt=excerpt(post.body), mentions=readers,
                                         hashtags=post.hashtags, must_read=post.must_read,
                                         created_at=post.created_at),
                    subject=post.id, actor=author.id)
    if post.kind == "praise":
        praised = await readers_among(session, post, post.recipients)
        await add_event(session, PraiseGiven(post_id=post.id, author_id=author.id, recipients=praised,
                                             badge=post.badge), subject=post.id, actor=author.id)
    return post


async def edit(session: AsyncSession, *, post_id: UUID, data: PostUpdate, user: CurrentUser) -> Post:
    """The author edits; the text and attachments before are kept as a version. Must-read edits may ask for a new
    acknowledgement. An edit that changes nothing (a retried PATCH) makes no version and no event."""
    post = await get_readable(session, post_id=post_id, user=user, for_update=True)
    if post.author_id != user.id:
        raise NotPostAuthor()
    if data.title is not None and post.kind != "article":
        raise InvalidInput("Only articles have a title.", field="title")
    if data.cover_attachment_id is not None and post.kind != "article":
        raise InvalidInput("Only articles have a cover.", field="cover_attachment_id")
    if data.pinned_until is not None and post.kind != "announcement":
        raise InvalidInput("Only announcements are pinned.", field="pinned_until")
    files, cover = await _files(session, post), post.cover_attachment_id
    new_cover = data.cover_attachment_id if "cover_attachment_id" in data.model_fields_set else cover
    new_files = [f for f in (files if data.attachment_ids is None else dict.fromkeys(data.attachment_ids))
                 if f != new_cover]
    changed = [name for name, differs in (
        ("body", data.body is not None and data.body != post.body),
        ("title", data.title is not None and data.title != post.title),
        ("attachment_ids", new_files != files), ("cover_attachment_id", new_cover != cover),
        ("pinned_until", data.pinned_until is not None and data.pinned_until != post.pinned_until),
        ("remind_at", data.remind_at is not None)) if differs]
    # One rule for asking again, whatever changed (text, attachments): the author asks for it explicitly.
    reack = data.require_reacknowledgement and post.kind == "announcement" and post.must_read
    if not changed and not reack:
        return post
    session.add(PostEdit(post_id=post.id, version=post.version, title=post.title, body=post.body,
                         attachment_ids=files, cover_attachment_id=cover, edited_by=user.id))
    if new_files != files or new_cover != cover:
        await _detach_all_but(session, post=post, keep=set(new_files) | ({new_cover} if new_cover else set()))
        await _attach(session, post=post, files=new_files, cover=new_cover, owner_id=user.id)
    if data.body is not None:
        mentioned, post.group_mentions = await resolve_mentions(session, body=data.body, user=user)
        post.body, post.body_html = data.body, render(data.body)
        post.mentions, post.hashtags = [p.id for p in mentioned], parse_hashtags(data.body)
    if data.title is not None:
        post.title = data.title
    if data.pinned_until is not None:
        post.pinned_until = data.pinned_until
    if data.remind_at is not None:
        if not post.must_read:
            raise InvalidInput("Only must-read announcements have reminders.", field="remind_at")
        post.remind_at, post.reminded_at = data.remind_at, None
    post.version += 1
    if reack:
        post.ack_version, post.reminded_at = post.version, None  # a new round: reminders go out again
    post.edited_at = post.updated_at = utcnow()
    await session.flush()
    await add_event(session, PostUpdated(post_id=post.id, author_id=post.author_id, editor_id=user.id,
                                         version=post.version, excerpt=excerpt(post.body), hashtags=post.hashtags,
                                         requires_acknowledgement=reack, changed=changed,
                                         attachment_ids=new_files if "attachment_ids" in changed else None,
                                         cover_attachment_id=post.cover_attachment_id),
                    subject=post.id, actor=user.id)
    return post


async def history(session: AsyncSession, *, post_id: UUID, user: CurrentUser) -> list[PostEdit]:
    """Earlier versions of a post the caller may read, newest first."""
    post = await get_readable(session, post_id=post_id, user=user)
    return list(await session.scalars(select(PostEdit).where(PostEdit.post_id == post.id)
                                      .order_by(PostEdit.version.desc())))


async def delete(session: AsyncSession, *, post_id: UUID, user: CurrentUser) -> None:
    """Soft delete by the author or a moderator; the post then reads as not found everywhere."""
    post = await get_readable(session, post_id=post_id, user=user, for_update=True)
    moderator = post.author_id != user.id
    if moderator and not user.has_role("moderator"):
        raise NotPostAuthor("Only the author or a moderator can delete a post.")
    post.deleted_at, post.deleted_by = utcnow(), user.id
    await add_event(session, PostDeleted(post_id=post.id, author_id=post.author_id, deleted_by=user.id,
                                         by_moderator=moderator), subject=post.id, actor=user.id)


# --- presenting: a fixed number of queries for any number of posts ----------------------------------
# Plain rows, not ORM objects: a page of 20 posts loaded as entities (identity map, instance state) and copied
# into the public model cost more CPU than the rest of a feed request. Each row carries the post's columns,
# its author's summary, the viewer's state and the attachments; `items` turns rows into `PostPublic`.

_POST_FIELDS = ("id", "author_id", "kind", "title", "body", "body_html", "audience", "group_id", "mentions",
                "group_mentions", "hashtags", "cover_attachment_id", "recipients", "badge", "best_answer_id",
                "pinned_until", "must_read", "remind_at", "version", "ack_version", "edited_at", "comment_count",
                "seen_by_count", "created_at", "updated_at", "poll_multiple", "poll_closes_at")
_ARRAYS = ("mentions", "group_mentions", "hashtags", "recipients")
_AUTHOR_FIELDS = ("id", "handle", "display_name", "title", "department", "avatar_url", "protected")


def _viewer_columns(viewer_id: UUID) -> list:
    """Per-post facts for one viewer, as correlated subqueries of the posts query (no query per post)."""
    counts = select(func.jsonb_build_object(*[part for kind in REACTION_KINDS for part in (
        literal(kind), func.count().filter(Reaction.kind == kind))])).where(
        Reaction.post_id == Post.id).scalar_subquery()
    return [
        select(Reaction.kind).where(Reaction.post_id == Post.id, Reaction.person_id == viewer_id)
        .scalar_subquery().label("my_reaction"),
        exists().where(Bookmark.post_id == Post.id, Bookmark.person_id == viewer_id).label("bookmarked"),
        select(Acknowledgement.version).where(Acknowledgement.post_id == Post.id,
                                              Acknowledgement.person_id == viewer_id)
        .scalar_subquery().label("acked_version"),
        counts.label("reaction_counts"),
    ]


def _files_column():
    """The post's attachments but its cover, in order, as a JSON array (NULL when none)."""
    summary = func.json_build_object(*[part for name in AttachmentSummary.model_fields
                                       for part in (literal(name), getattr(Attachment, name))])
    return (select(func.json_agg(aggregate_order_by(summary, *ATTACHMENT_ORDER)))
            .where(Attachment.post_id == Post.id, Attachment.id.is_distinct_from(Post.cover_attachment_id))
            .scalar_subquery().label("files"))


def _post_column(name: str):
    column = getattr(Post, name)
    if name in _ARRAYS:  # lists as the driver gives them: SQLAlchemy's per-element processing is no-op work
        return type_coerce(column, NullType()).label(name)
    return column


def presentation_columns(viewer_id: Any) -> list:
    """Everything a post's public form needs, for a query over `posts` joined to its author (`Person`)."""
    return [*[_post_column(name) for name in _POST_FIELDS],
            *[getattr(Person, name).label(f"author__{name}") for name in _AUTHOR_FIELDS],
            *_viewer_columns(viewer_id), _files_column()]


def presentation_query(ids: Any, viewer_id: Any):
    """The posts `ids` (an array expression) with their authors and the viewer's state, in one statement."""
    return (select(*presentation_columns(viewer_id)).select_from(Post).join(Person, Person.id == Post.author_id)
            .where(Post.id == any_(ids)))


@lru_cache(maxsize=1)
def _presentation() -> Select:
    # Built once: a statement this size costs more to build and compile than to run.
    return presentation_query(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))),
                              bindparam("viewer", type_=PG_UUID(as_uuid=True)))


async def present(session: AsyncSession, *, posts: list[Post] | list[UUID], user: CurrentUser,
                  now: datetime | None = None) -> list[PostPublic]:
    """Posts (already known readable by `user`) as the API shows them, in the given order."""
    ids = [p if isinstance(p, UUID) else p.id for p in posts]
    if not ids:
        return []
    rows = {r.id: r for r in await session.execute(_presentation(), {"ids": ids, "viewer": user.id})}
    return await items(session, [rows[i] for i in ids if i in rows], user=user, now=now)


async def items(session: AsyncSession, rows: list, *, user: CurrentUser, now: datetime | None = None
                ) -> list[PostPublic]:
    """Rows of `presentation_columns` as the API shows them, in their order (poll results: 3 more queries)."""
    now = now or utcnow()
    polls = await _polls(session, [r for r in rows if r.kind == "poll"], user, now)
    names = tuple(rows[0]._mapping.keys()) if rows else ()  # once: Row._asdict goes through a mapping per row
    return [_public(dict(zip(names, row)), polls.get(row.id), now) for row in rows]


def _public(out: dict, poll: PollPublic | None, now: datetime) -> PostPublic:
    """`out`: a row of `presentation_columns` as a dict, completed here into the post's public form."""
    out["author"] = {name: out[f"author__{name}"] for name in _AUTHOR_FIELDS}
    announcement = out["kind"] == "announcement"
    acked = out["acked_version"]
    out.update(
        poll=poll, attachments=out["files"] or [],
        reaction_counts={k: v for k, v in (out["reaction_counts"] or {}).items() if v},
        acknowledged=(acked is not None and acked >= out["ack_version"]) if announcement and out["must_read"] else None,
        pinned=announcement and out["pinned_until"] is not None and out["pinned_until"] > now)
    return PostPublic.model_validate(out)  # the other columns are not fields of PostPublic: ignored


def poll_closed(post, now: datetime) -> bool:
    return post.poll_closes_at is not None and post.poll_closes_at <= now


async def _polls(session: AsyncSession, posts: list, user: CurrentUser, now: datetime) -> dict[UUID, PollPublic]:
    """Options of every poll at once; counts only for those who voted, the author, or once closed.

    `posts`: Post objects or rows with their id, author_id, poll_multiple and poll_closes_at."""
    if not posts:
        return {}
    ids = [p.id for p in posts]
    options: dict[UUID, list[PollOption]] = {}
    for option in await session.scalars(select(PollOption).where(PollOption.post_id.in_(ids))
                                        .order_by(PollOption.post_id, PollOption.position)):
        options.setdefault(option.post_id, []).append(option)
    mine: dict[UUID, list[UUID]] = {}
    voters: dict[UUID, int] = {}
    for post_id, option_id in await session.execute(select(PollVote.post_id, PollVote.option_id).where(
            PollVote.post_id.in_(ids), PollVote.person_id == user.id)):
        mine.setdefault(post_id, []).append(option_id)
    for post_id, n in await session.execute(select(PollVote.post_id, func.count(func.distinct(PollVote.person_id)))
                                            .where(PollVote.post_id.in_(ids)).group_by(PollVote.post_id)):
        voters[post_id] = n
    result = {}
    for post in posts:
        closed = poll_closed(post, now)
        visible = closed or post.id in mine or post.author_id == user.id
        result[post.id] = PollPublic(
            multiple=post.poll_multiple, closes_at=post.poll_closes_at, closed=closed, results_visible=visible,
            my_votes=mine.get(post.id, []), voters=voters.get(post.id, 0) if visible else None,
            options=[PollOptionPublic(id=o.id, label=o.label, votes=o.vote_count if visible else None)
                     for o in options.get(post.id, [])])
    return result
