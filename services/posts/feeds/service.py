"""Feeds: home (recent or top), company, a group, a person, a tag, and one's bookmarks.

Every feed selects post ids with `content.service.readable_by` — the one visibility rule — and then
presents the page with `content.service.present` (a fixed number of queries, whatever the page size). Home,
the busiest, does both in one statement (`home_page_query`): the page's posts come with everything they show.

Home is the union of several small sources, each read newest-first from its own index and cut at the
page size before they are merged (a LATERAL join per followed person, joined group and followed tag):
followed people's posts outside groups, posts of joined groups that are not muted (and of All company),
company announcements, posts with followed hashtags, and one's own posts. Announcements pinned at the
time of the first page come first on that page, and stay out of the rest of the feed.

The per-person sources (followed people, joined groups, one's own posts) are materialized, fan-out on
write, in `home_entries` (migrations 0018 and 0021: triggers on posts, follows, group_members, group_mutes
and people keep them in the same transaction as the change; about the newest 400 per person, with a
horizon above which they are complete; 0022: a post's fan-out and a follow, join or mute of its source in
concurrent transactions serialize on an advisory lock, so neither misses the other). Recent pages read that timeline when it holds the whole page, the
sources otherwise (beyond the cap, or no timeline): the choice is made inside the one statement. An entry
is a candidate, never a permission: every entry read goes through `readable_by`. All company, company
announcements and followed tags are read from their sources as before, and so is `order=top`.

Cursors are stable under concurrent inserts: the first page fixes a time `t0` that rides in every cursor;
posts created after it never enter that pagination (a new first page shows them), and the keyset
`(created_at, id)` continues exactly where the previous page stopped.

`order=top` scores the posts of the last 14 days (at most 300 per source) at `t0`:

    score = (1 + reactions + 2 × comments + 0.2 × seen_by) × affinity / (hours_since_posted + 2) ^ 1.5

affinity: 1.5 someone you follow, 1.3 a company announcement, 1.2 a group you joined, 1.1 a tag you
follow, 1.0 All company and your own posts. Pages continue by keyset on (score, id); the score of a post
already shown can change between pages as it gets engagement, so top pages may rarely repeat or skip
a post — recent order never does.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from uuid import UUID

from sqlalchemy import (
    DateTime,
    Float,
    Integer,
    Select,
    and_,
    bindparam,
    column,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.content.models import Bookmark, Post
from services.posts.content.schemas import PostPublic
from services.posts.content.service import items, present, presentation_columns, readable_by
from services.posts.feeds.models import GroupMute, HomeEntry, HomeTimeline, TagFollow
from services.posts.graph.models import Follow
from services.posts.groups import service as groups
from services.posts.groups.models import Group, GroupMember
from services.posts.people import api as people
from services.posts.people.api import Person
from shared.auth import CurrentUser
from shared.db import compiled_sql, driver_args, utcnow
from shared.errors import InvalidInput
from shared.events import GroupMuted, TagFollowed
from shared.outbox import add_event
from shared.pagination import PageParams, decode_cursor, encode_cursor

TOP_WINDOW = timedelta(days=14)
TOP_PER_SOURCE = 300
AFFINITY = {"follow": 1.5, "announcement": 1.3, "group": 1.2, "tag": 1.1, "company": 1.0, "own": 1.0}
_score = column("score", Float)
# Inline, not a bind parameter: the statements run as prepared statements with a cached generic plan, and
# only a literal lets that plan use the partial indexes on announcements (ix_posts_announcements, ix_posts_pinned).
_ANNOUNCEMENT = literal_column("'announcement'")


@dataclass(frozen=True)
class FeedPage:
    items: list[PostPublic]
    next_cursor: str | None


def normalize_tag(tag: str) -> str:
    value = tag.lstrip("#").lower()
    if not value or len(value) > 100 or not all(c.isalnum() or c == "_" for c in value):
        raise InvalidInput("A tag is letters, digits and underscores (at most 100).", field="tag")
    return value


def _newest(stmt: Select, limit: int) -> Select:
    return stmt.order_by(Post.created_at.desc(), Post.id.desc()).limit(limit)


def _window(me: UUID, t0: datetime, after: tuple | None, top: bool):
    """Conditions every source shares: readable by me, not newer than t0, after the cursor (or in the window)."""
    conditions = [readable_by(me), Post.created_at <= t0]
    if top:
        conditions.append(Post.created_at > t0 - TOP_WINDOW)
    elif after is not None:
        conditions.append(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return conditions


def _not_pinned(t0: datetime):
    return or_(Post.kind != _ANNOUNCEMENT, Post.pinned_until.is_(None), Post.pinned_until <= t0)


def _timeline(me, t0, after, limit):
    """The newest `limit` entries of my materialized home timeline (followed people, joined groups, my own
    posts) after the cursor that I may read — the entries above its horizon only, the complete part."""
    entry = tuple_(HomeEntry.created_at, HomeEntry.post_id)
    conditions = [HomeEntry.person_id == me, HomeEntry.created_at <= t0, readable_by(me), _not_pinned(t0),
                  or_(HomeTimeline.horizon_at.is_(None),
                      entry > tuple_(HomeTimeline.horizon_at, HomeTimeline.horizon_id))]
    if after is not None:
        conditions.append(entry < tuple_(*after))
    return (select(HomeEntry.post_id.label("id"), HomeEntry.created_at)
            .join(HomeTimeline, HomeTimeline.person_id == HomeEntry.person_id)
            .join(Post, Post.id == HomeEntry.post_id).where(*conditions)
            .order_by(HomeEntry.created_at.desc(), HomeEntry.post_id.desc()).limit(limit).cte("timeline"))


def _home_sources(me, t0, after, limit, top: bool) -> list[Select]:
    """Recent order reads followed people, joined groups and my own posts from my timeline when it holds the
    whole page (it is complete, or has `limit` entries above its horizon), and from their sources otherwise;
    `top` reads them from their sources (its window is 14 days of every source, not the newest entries)."""
    shared = [*_window(me, t0, after, top), _not_pinned(t0)]
    timeline = None if top else _timeline(me, t0, after, limit)
    covered = None if top else exists().where(
        HomeTimeline.person_id == me,
        or_(HomeTimeline.horizon_at.is_(None), select(func.count()).select_from(timeline).scalar_subquery() >= limit))

    def source(where, name: str, via=None, correlate=(), materialized=False):
        gate = [~covered] if materialized and covered is not None else []
        inner = _newest(select(Post.id, Post.created_at).where(*where, *shared), limit)
        if via is None:
            plain = inner.subquery()
            return select(plain.c.id, plain.c.created_at, literal(AFFINITY[name]).label("aff")).where(*gate)
        lateral = inner.lateral()
        return (select(lateral.c.id, lateral.c.created_at, literal(AFFINITY[name]).label("aff"))
                .select_from(via).join(lateral, true()).where(*correlate, *gate))

    muted = select(GroupMute.group_id).where(GroupMute.person_id == me)
    all_company = select(Group.id).where(Group.all_company).scalar_subquery()
    sources = [
        source([Post.author_id == Follow.followee_id, Post.group_id.is_(None)], "follow", Follow,
               [Follow.follower_id == me], materialized=True),
        source([Post.group_id == GroupMember.group_id], "group", GroupMember,
               [GroupMember.person_id == me, GroupMember.group_id.not_in(muted)], materialized=True),
        source([Post.group_id == all_company, all_company.not_in(muted)], "company"),
        source([Post.kind == _ANNOUNCEMENT, Post.group_id.is_(None)], "announcement"),
        source([Post.hashtags.contains(array([TagFollow.tag]))], "tag", TagFollow, [TagFollow.person_id == me]),
        source([Post.author_id == me], "own", materialized=True),
    ]
    if timeline is not None:
        sources.append(select(timeline.c.id, timeline.c.created_at, literal(AFFINITY["own"]).label("aff")))
    return sources


def _merged(me, t0, after, limit, top: bool):
    sources = _home_sources(me, t0, after, TOP_PER_SOURCE if top else limit + 1, top)
    union = sources[0].union_all(*sources[1:]).subquery("candidates")
    return (select(union.c.id, union.c.created_at, func.max(union.c.aff).label("aff"))
            .group_by(union.c.id, union.c.created_at))


def home_ids_query(*, me, t0, after: tuple | None, limit) -> Select:
    """Recent home: the next `limit + 1` ids after the cursor (the feed's SQL, also run by bench/feeds.py).

    Arguments are values or bind parameters (the service builds each shape once, see `_statement`)."""
    merged = _merged(me, t0, after, limit, top=False).subquery("merged")
    return (select(merged.c.id, merged.c.created_at)
            .order_by(merged.c.created_at.desc(), merged.c.id.desc()).limit(limit + 1))


def home_top_query(*, me, t0, after: tuple | None, limit) -> Select:
    merged = _merged(me, t0, None, limit, top=True).subquery("merged")
    hours = func.extract("epoch", t0 - merged.c.created_at) / 3600.0
    score = ((1 + Post.reaction_count + 2 * Post.comment_count + 0.2 * Post.seen_by_count) * merged.c.aff
             / func.power(hours + 2, 1.5))
    scored = (select(merged.c.id, score.label("score")).join(Post, Post.id == merged.c.id)).subquery("scored")
    stmt = select(scored.c.id, scored.c.score)
    if after is not None:
        stmt = stmt.where(tuple_(scored.c.score, scored.c.id) < tuple_(*after))
    return stmt.order_by(scored.c.score.desc(), scored.c.id.desc()).limit(limit + 1)


def pinned_query(*, me, t0, limit) -> Select:
    """Announcements pinned at t0 that reach my home: company-wide, or in a group I joined and did not mute."""
    muted = select(GroupMute.group_id).where(GroupMute.person_id == me)
    mine = select(GroupMember.group_id).where(GroupMember.person_id == me)
    all_company = select(Group.id).where(Group.all_company)
    return _newest(select(Post.id, Post.created_at).where(
        Post.kind == _ANNOUNCEMENT, Post.pinned_until.is_not(None), Post.pinned_until > t0, readable_by(me),
        Post.created_at <= t0,
        or_(Post.group_id.is_(None), and_(or_(Post.group_id.in_(mine), Post.group_id.in_(all_company)),
                                          Post.group_id.not_in(muted)))), limit)


def home_first_page_query(*, me, t0, limit, top: bool = False) -> Select:
    """A first home page in one statement: the pinned announcements (at most `limit`), flagged, and the first
    `limit + 1` of the stream (also run by bench/feeds.py). Rows come unordered; `key` orders each part."""
    pinned = pinned_query(me=me, t0=t0, limit=limit).subquery("pinned")
    stream = (home_top_query if top else home_ids_query)(me=me, t0=t0, after=None, limit=limit).subquery("stream")
    pinned_key = func.extract("epoch", pinned.c.created_at) if top else pinned.c.created_at
    return union_all(select(pinned.c.id, pinned_key.label("key"), true().label("pinned")),
                     select(stream.c.id, (stream.c.score if top else stream.c.created_at).label("key"),
                            false().label("pinned")))


def home_page_query(*, me, t0, after: tuple | None, limit, top: bool = False) -> Select:
    """A whole home page in one statement (also run by bench/feeds.py): its first `limit + 1` posts in page
    order — on a first page the pinned announcements (flagged `page_pinned`) first — each with everything
    `content.service.items` presents (author, counts, my state, attachments), and its ordering key."""
    if after is None:
        ids = home_first_page_query(me=me, t0=t0, limit=limit, top=top).subquery("page_ids")
    else:
        stream = (home_top_query if top else home_ids_query)(me=me, t0=t0, after=after, limit=limit).subquery("stream")
        ids = select(stream.c.id, (stream.c.score if top else stream.c.created_at).label("key"),
                     false().label("pinned")).subquery("page_ids")
    order = (ids.c.pinned.desc(), ids.c.key.desc(), ids.c.id.desc())
    page = select(ids.c.id, ids.c.key, ids.c.pinned).order_by(*order).limit(limit + 1).subquery("page")
    return (select(page.c.key.label("page_key"), page.c.pinned.label("page_pinned"), *presentation_columns(me))
            .select_from(page).join(Post, Post.id == page.c.id).join(Person, Person.id == Post.author_id)
            .order_by(page.c.pinned.desc(), page.c.key.desc(), page.c.id.desc()))


_UUID, _TIME = PG_UUID(as_uuid=True), DateTime(timezone=True)


@lru_cache(maxsize=8)
def _statement(order: str, paged: bool) -> Select:
    """Each home statement built once with bind parameters: building and compiling one of this size per
    request costs more than PostgreSQL takes to run it."""
    me, t0, limit = bindparam("me", type_=_UUID), bindparam("t0", type_=_TIME), bindparam("limit", type_=Integer)
    top = order == "top"
    after = (bindparam("after_key", type_=Float if top else _TIME), bindparam("after_id", type_=_UUID)) if paged else None
    return home_page_query(me=me, t0=t0, after=after, limit=limit, top=top)


def _cursor(page: PageParams, second) -> tuple[datetime, tuple | None]:
    if not page.cursor:
        return utcnow(), None
    t0, key, post_id = decode_cursor(page.cursor, [Post.created_at, second, Post.id])
    return t0, (key, post_id)


async def home(session: AsyncSession, *, user: CurrentUser, page: PageParams, order: str = "recent") -> FeedPage:
    """One statement for the page (ids, pinned announcements, posts with authors, my state, attachments), and
    three more only when it shows polls."""
    top = order == "top"
    t0, after = _cursor(page, _score if top else Post.created_at)
    params = {"me": user.id, "t0": t0, "limit": page.limit}
    if after is not None:
        params |= {"after_key": after[0], "after_id": after[1]}
    # On the session's connection: plain rows without the ORM's result machinery (nothing here is pending
    # to flush: a GET has not written), which costs more than the rest of the page's presentation.
    connection = await session.connection()
    # As driver SQL, compiled once (shared.db.compiled_sql): no compiled-cache lookup per request.
    compiled = compiled_sql(_statement(order, after is not None), connection.dialect)
    rows = (await connection.exec_driver_sql(compiled[0], driver_args(compiled, params))).all()
    cursor = None
    if len(rows) > page.limit:  # pinned announcements come first, so the page's last row is the stream's if any
        last = rows[page.limit - 1]
        if last.page_pinned:  # a page of pinned posts only continues at the start of the stream
            cursor = encode_cursor([t0, 1e308 if top else t0 + timedelta(microseconds=1), UUID(int=2**128 - 1)])
        else:
            cursor = encode_cursor([t0, last.page_key, last.id])
    return FeedPage(items=await items(session, rows[:page.limit], user=user, now=t0), next_cursor=cursor)


async def _simple(session: AsyncSession, *, user: CurrentUser, page: PageParams, where: list) -> FeedPage:
    """Newest first over one condition (plus the visibility rule), keyset on (created_at, id)."""
    t0, after = _cursor(page, Post.created_at)
    stmt = select(Post.id, Post.created_at).where(*where, *_window(user.id, t0, after, top=False))
    rows = (await session.execute(_newest(stmt, page.limit + 1))).all()
    cursor = encode_cursor([t0, rows[page.limit - 1][1], rows[page.limit - 1][0]]) if len(rows) > page.limit else None
    return FeedPage(items=await present(session, posts=[r[0] for r in rows[:page.limit]], user=user, now=t0),
                    next_cursor=cursor)


async def company(session: AsyncSession, *, user: CurrentUser, page: PageParams) -> FeedPage:
    """Everything company-wide I may read: posts outside groups and in All company."""
    all_company = select(Group.id).where(Group.all_company).scalar_subquery()
    return await _simple(session, user=user, page=page,
                         where=[or_(Post.group_id.is_(None), Post.group_id == all_company)])


async def group(session: AsyncSession, *, user: CurrentUser, group_id: UUID, page: PageParams) -> FeedPage:
    """A group's posts: 404 when the group is secret to me, 403 when its content is for members."""
    standing = await groups.access_or_raise(session, group_id=group_id, user=user)
    if not await groups.can_read_content(session, group=standing.group, person_id=user.id):
        raise groups.NotAGroupMember("Join the group to read its posts.")
    return await _simple(session, user=user, page=page, where=[Post.group_id == group_id])


async def person(session: AsyncSession, *, user: CurrentUser, person_id: UUID, page: PageParams) -> FeedPage:
    """Someone's posts that I may read (none of a protected account's unless I follow it)."""
    await people.get_or_raise(session, person_id=person_id)
    return await _simple(session, user=user, page=page, where=[Post.author_id == person_id])


async def tag(session: AsyncSession, *, user: CurrentUser, tag: str, page: PageParams) -> FeedPage:
    return await _simple(session, user=user, page=page,
                         where=[Post.hashtags.contains(array([literal(normalize_tag(tag))]))])


async def bookmarks(session: AsyncSession, *, user: CurrentUser, page: PageParams) -> FeedPage:
    """My bookmarks that I can still read, most recently bookmarked first."""
    after = decode_cursor(page.cursor, [Bookmark.created_at, Bookmark.post_id]) if page.cursor else None
    stmt = (select(Bookmark.post_id, Bookmark.created_at).join(Post, Post.id == Bookmark.post_id)
            .where(Bookmark.person_id == user.id, readable_by(user.id)))
    if after is not None:
        stmt = stmt.where(tuple_(Bookmark.created_at, Bookmark.post_id) < tuple_(*after))
    rows = (await session.execute(stmt.order_by(Bookmark.created_at.desc(), Bookmark.post_id.desc())
                                  .limit(page.limit + 1))).all()
    cursor = encode_cursor([rows[page.limit - 1][1], rows[page.limit - 1][0]]) if len(rows) > page.limit else None
    return FeedPage(items=await present(session, posts=[r[0] for r in rows[:page.limit]], user=user),
                    next_cursor=cursor)


# --- what shapes home: followed tags and muted groups --------------------------------------------

async def follow_tag(session: AsyncSession, *, user: CurrentUser, tag: str, on: bool) -> str:
    value = normalize_tag(tag)
    if on:
        changed = await session.scalar(insert(TagFollow).values(person_id=user.id, tag=value, created_at=utcnow())
                                       .on_conflict_do_nothing().returning(TagFollow.tag))
    else:
        changed = await session.scalar(TagFollow.__table__.delete().where(
            TagFollow.person_id == user.id, TagFollow.tag == value).returning(TagFollow.tag))
    if changed is not None:
        await add_event(session, TagFollowed(tag=value, person_id=user.id, following=on), subject=user.id,
                        actor=user.id)
    return value


async def followed_tags(session: AsyncSession, *, user: CurrentUser) -> list[str]:
    return list(await session.scalars(select(TagFollow.tag).where(TagFollow.person_id == user.id)
                                      .order_by(TagFollow.tag)))


async def mute_group(session: AsyncSession, *, user: CurrentUser, group_id: UUID, on: bool) -> None:
    """Keep a group's posts out of my home feed (I stay a member); 404 for a group secret to me."""
    await groups.access_or_raise(session, group_id=group_id, user=user)
    if on:
        changed = await session.scalar(insert(GroupMute).values(person_id=user.id, group_id=group_id,
                                                                created_at=utcnow())
                                       .on_conflict_do_nothing().returning(GroupMute.group_id))
    else:
        changed = await session.scalar(GroupMute.__table__.delete().where(
            GroupMute.person_id == user.id, GroupMute.group_id == group_id).returning(GroupMute.group_id))
    if changed is not None:
        await add_event(session, GroupMuted(group_id=group_id, person_id=user.id, muted=on), subject=group_id,
                        actor=user.id)
