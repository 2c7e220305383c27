"""Search over posts, people and groups, typeahead suggestions and the expert finder.

Posts: PostgreSQL full-text search on a stored, weighted tsvector (GIN), English stemming after
unaccent. The query is `websearch_to_tsquery` (quoted phrases, `or`, `-word`) and the last word also
matches as a prefix while it is being typed. Which posts a person may see is decided by one rule,
`content.readable_by` (the SQL form of `content.can_read`): results and snippets come only from posts
that pass it, so secret and private groups, followers-only posts, protected accounts and deleted
posts never leak. The document weighs an article's title (A) over the body (B) over the post's
comments (C, kept on the post by a trigger on comments).

Relevance order ranks the newest `CANDIDATES` matching posts the caller can read (more than people
page through), each by

    score = ts_rank(document, query, 1) * (1 + ln(1 + reactions + 2 * comments) / 4)
                                        * (0.25 + 0.75 * 2 ^ (-age_days / 30))

text relevance (normalized by document length; title A > body B), engagement with diminishing returns,
and a 30-day half-life that never takes more than three quarters away. Bounding the candidates keeps a
very common word as cheap as a rare one. How they are found depends on how common the words are among
the newest posts that pass the filters (`_first_ranked_page`): common words by reading the newest posts
in date order until enough match (the text index would read every one of the word's entries, 850,000
for a word in 85 % of a million posts); rarer ones through the text index, inside the shortest recent
window that holds enough of them (7, 30, 90 days or all time). Both give the same rows. Trade-off:
relevance order ranks only the newest CANDIDATES matches, so an older, better match of a common word
is found with `order=date`, a date filter or more words, not on the first pages. `order=date` pages
through every match. Snippets (`ts_headline`) are computed only for the page returned.

Every statement is planned for its values (`custom_plans`): a generic plan cannot know whether a word
is in 85 % of the posts or in 50 of them.
"""

import html
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    DateTime,
    Float,
    Integer,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from uuid6 import uuid7

from services.posts.attachments.models import Attachment
from services.posts.content.models import Post
from services.posts.content.service import readable_by
from services.posts.groups.models import Group, GroupMember
from services.posts.people.api import Person, PersonSummary
from services.posts.search.models import (
    GROUP_NAME_WORDS,
    PERSON_NAME_WORDS,
    TS_CONFIG,
    groups,
    people,
    posts,
    search_tags,
    unaccented,
)
from services.posts.search.schemas import (
    QUERY_MAX,
    GroupHit,
    PeopleFilters,
    PersonHit,
    PostFilters,
    PostHit,
    PostOrder,
    SearchType,
    TagHit,
)
from shared.auth import CurrentUser
from shared.db import utcnow
from shared.events import SearchPerformed, SearchResultOpened
from shared.outbox import add_event
from shared.pagination import PageParams, decode_cursor, encode_cursor

CANDIDATES = 500  # relevance order ranks at most this many of the newest matches (25 pages of 20)
# Text-index windows, chosen before all time (see _first_ranked_page). No year: a window is worth it only while
# it holds few posts. A word that needs a year for 500 matches has few in all time, and a bitmap of a year of
# the created_at index (500,000 entries at 1,000,000 posts over two years, ~40 ms) cost more than reading
# the all-time matches the text index (and a tag) found (word + tag: 5,000) and dropping the older ones.
WINDOWS_DAYS = (7, 30, 90)
SAMPLE = 2_000  # relevance: the newest posts read by date first (see _first_ranked_page)
SCAN_MAX = 30_000  # ... and at most this many when the sample says they hold enough matches
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HALF_LIFE_DAYS = 30
RESTRICTED_TAGS = 4  # suggest checks at most this many times `limit` tags only on restricted posts
RESTRICTED_SCAN = 100  # ... each on its newest this many live posts
MARK_START, MARK_END = "\ue000", "\ue001"  # private-use characters: html-escaped text cannot contain them
HEADLINE = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=35, MinWords=15, MaxFragments=2"
TITLE_HEADLINE = f"StartSel={MARK_START}, StopSel={MARK_END}, HighlightAll=true"
WORD = re.compile(r"\w+", re.UNICODE)


# --- queries --------------------------------------------------------------------------------------

def tsquery_parts(q: str) -> tuple[str | None, str | None]:
    """(the websearch_to_tsquery text, the last word as a to_tsquery prefix while it is typed): either may
    be None."""
    words = q.split()
    last = words[-1] if words else ""
    typing_a_word = (WORD.fullmatch(last) and q.count('"') % 2 == 0 and not q.endswith('"')
                     and (len(words) < 2 or words[-2].lower() != "or"))
    if not typing_a_word:
        return q, None
    rest = q[: q.rfind(last)].strip()
    return (rest or None), f"{last}:*"


def _tsquery_of(words, prefix):
    config = _regconfig()
    if prefix is None:
        return func.websearch_to_tsquery(config, words)
    typed = func.to_tsquery(config, prefix)
    return func.websearch_to_tsquery(config, words).op("&&")(typed) if words is not None else typed


def tsquery(q: str):
    """websearch_to_tsquery of the text, with its last word also matching as a prefix (typeahead)."""
    return _tsquery_of(*tsquery_parts(q))


def tsquery_exact(q: str):
    """websearch_to_tsquery alone: whole words (stemmed), phrases, or, -word."""
    return func.websearch_to_tsquery(_regconfig(), q)


def _regconfig():
    return literal_column(f"'{TS_CONFIG}'::regconfig")


def _ordered_filters(filters: PostFilters) -> list:
    """The filters with an index that also gives the newest posts first: (author_id | group_id,
    created_at) and created_at itself."""
    conditions = []
    if filters.author_id is not None:
        conditions.append(posts.c.author_id == filters.author_id)
    if filters.group_id is not None:
        conditions.append(posts.c.group_id == filters.group_id)
    if filters.since is not None:
        conditions.append(posts.c.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(posts.c.created_at < filters.until)
    return conditions


def _other_filters(filters: PostFilters, source=posts) -> list:
    """The filters checked on each post (of the posts table or a subquery of it)."""
    conditions = []
    if filters.tag is not None:
        tag = filters.tag.lower().lstrip("#") if isinstance(filters.tag, str) else filters.tag  # or a parameter
        conditions.append(source.c.hashtags.contains(pg_array([tag])))
    if filters.kind is not None:
        conditions.append(source.c.kind == filters.kind)
    if filters.unanswered:
        conditions += [source.c.kind == "question", source.c.best_answer_id.is_(None)]
    if filters.has_attachment is not None:
        attached = exists().where(Attachment.post_id == source.c.id)
        conditions.append(attached if filters.has_attachment else ~attached)
    return conditions


def _post_filters(filters: PostFilters) -> list:
    return _ordered_filters(filters) + _other_filters(filters)


def _visible_posts(user: CurrentUser) -> list:
    return [readable_by(user.id)]  # the one rule (content.can_read uses it too); it excludes deleted posts


def _engagement(source):
    return cast(source.c.reaction_count + 2 * source.c.comment_count, Float)


def _score(source, query, as_of):
    rank = cast(func.ts_rank(source.c.search_vector, query, 1), Float)
    age_days = cast(func.extract("epoch", as_of - source.c.created_at), Float) / 86400.0
    recency = 0.25 + 0.75 * func.power(2.0, -func.greatest(age_days, 0.0) / HALF_LIFE_DAYS)
    engagement = 1 + func.ln(1 + _engagement(source)) / 4
    return rank * engagement * recency


# --- posts ----------------------------------------------------------------------------------------

def decode(cursor: str | None, columns) -> list | None:
    return decode_cursor(cursor, columns) if cursor else None


def _post_cursor_columns(order: PostOrder):
    if order == "date":
        return [posts.c.created_at, posts.c.id]
    # score, id, the time the search started, the start of its candidate window, the newest posts the
    # candidates were taken from (0: from the text index) (types for decoding)
    return [literal(0.0, Float), posts.c.id, posts.c.created_at, posts.c.created_at, literal(0, Integer)]


async def window_start(session: AsyncSession, where: list, *, as_of: datetime, need: int) -> datetime:
    """The latest start of a window before `as_of` holding `need` matches (the epoch if none does).

    Bounding the newest-N query by such a window gives the same N rows, but lets PostgreSQL combine
    the text index with the created_at index instead of reading every match of a middling word.
    """
    for days in WINDOWS_DAYS:
        start = as_of - timedelta(days=days)
        probe = (select(posts.c.id).where(*where, posts.c.created_at > start, posts.c.created_at <= as_of)
                 .limit(need).subquery("probe"))
        if await session.scalar(select(func.count()).select_from(probe)) >= need:
            return start
    return EPOCH


def _by_date_statement(*, user, query, filters: PostFilters, after: bool, limit: int):
    stmt = select(posts.c.id, posts.c.created_at).where(posts.c.search_vector.op("@@")(query),
                                                         *_visible_posts(user), *_post_filters(filters))
    if after:
        stmt = stmt.where(tuple_(posts.c.created_at, posts.c.id)
                          < tuple_(bindparam("after_at", type_=DateTime(timezone=True)),
                                   bindparam("after_id", type_=Uuid)))
    return stmt.order_by(posts.c.created_at.desc(), posts.c.id.desc()).limit(limit)


async def _newest_by_date(session: AsyncSession, *, user: CurrentUser, q: str, filters: PostFilters,
                          after: list | None, page: PageParams):
    stmt, params = _bound_search(user=user, q=q, filters=filters, key=("date", bool(after), page.limit + 1),
                                 build=partial(_by_date_statement, after=bool(after), limit=page.limit + 1))
    if after:
        params |= {"after_at": after[0], "after_id": after[1]}
    rows = (await session.execute(stmt, params)).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return [(r.id, None) for r in rows], (encode_cursor([rows[-1].created_at, rows[-1].id]) if more else None)


def _candidates_by_text_index(*, user: CurrentUser, query, filters: PostFilters, as_of: datetime,
                              start: datetime):
    """The newest `CANDIDATES` readable matches in (start, as_of], found through the text index.

    The visibility rule is checked on the matches newest first, only until CANDIDATES pass, not on every match
    (a typed word and a tag: 5,000 matches at 1,000,000 posts, each a few index lookups): the matches are a
    subquery with OFFSET 0, which PostgreSQL neither merges into the outer query nor pushes the rule into."""
    matches = (select(posts.c.id, posts.c.created_at, posts.c.search_vector, posts.c.reaction_count,
                      posts.c.comment_count, posts.c.author_id, posts.c.group_id, posts.c.audience, posts.c.deleted_at)
               .where(posts.c.search_vector.op("@@")(query), posts.c.deleted_at.is_(None), *_post_filters(filters),
                      posts.c.created_at > start, posts.c.created_at <= as_of)
               .order_by(posts.c.created_at.desc()).offset(0).subquery("matches"))
    seen = aliased(Post, matches)  # the one visibility rule, on each match read
    return (select(matches.c.id, matches.c.created_at, matches.c.search_vector, matches.c.reaction_count,
                   matches.c.comment_count)
            .where(readable_by(user.id, seen))
            .order_by(matches.c.created_at.desc()).limit(CANDIDATES).subquery("candidates"))


def newest_readable(*, user: CurrentUser, match, filters: list, as_of: datetime, scan: int, need: int,
                    columns: tuple[str, ...]):
    """The newest `need` posts that `user` may read and `match(source)` accepts, among the newest `scan`
    posts (up to `as_of`) that pass `filters`, read newest first through the created_at (or a
    filter's) index: a subquery with `columns`.

    The scan stops as soon as it has `need` matches: ~600 posts for a word in 85 % of them, where the
    text index would read all 850,000 of its entries (and a prefix builds a bitmap of them)."""
    matched_on = ("id", "search_vector", "hashtags", "kind", "best_answer_id", "created_at")
    visibility = ("author_id", "group_id", "audience", "deleted_at")
    recent = (select(*(posts.c[name] for name in dict.fromkeys(columns + matched_on + visibility)))
              .where(*filters, posts.c.deleted_at.is_(None), posts.c.created_at <= as_of)
              .order_by(posts.c.created_at.desc()).limit(scan).subquery("recent"))
    seen = aliased(Post, recent)  # the one visibility rule, applied to the scanned rows
    return (select(*(recent.c[name] for name in columns)).where(match(recent), readable_by(user.id, seen))
            .order_by(recent.c.created_at.desc()).limit(need).subquery("newest"))


def sampled_scan(found: int, need: int) -> int | None:
    """How many of the newest posts to read for `need` matches, given `found` among the newest SAMPLE
    (a quarter more for the variance, at most SCAN_MAX); None when even SCAN_MAX would not do (then the
    text index is asked)."""
    if not found or SAMPLE * need / found > SCAN_MAX:
        return None
    return min(math.ceil(SAMPLE * need / found * 1.25), SCAN_MAX)


def _candidates_by_date(*, user: CurrentUser, query, filters: PostFilters, as_of: datetime, scan: int):
    """The newest `CANDIDATES` readable matches among the newest `scan` posts passing the filters that
    have an index in date order (author, group, dates); the others (tag, kind, ...) are checked like
    the words, so the sample's density counts them and a scan never reads ten posts for each one
    it keeps."""
    def match(source):
        return and_(source.c.search_vector.op("@@")(query), *_other_filters(filters, source))
    return newest_readable(user=user, match=match, filters=_ordered_filters(filters),
                           as_of=as_of, scan=scan, need=CANDIDATES,
                           columns=("id", "created_at", "search_vector", "reaction_count", "comment_count"))


def _ranked_statement(*, user, query, filters: PostFilters, by_date: bool, after: bool, limit: int):
    """A page of the candidates by score, each row with `found`: how many candidates there were. The
    candidates come by date (the newest `scan` posts) or through the text index in (start, as_of]; as_of,
    start, scan and the cursor's (after_score, after_id) are parameters."""
    as_of = bindparam("as_of", type_=DateTime(timezone=True))
    if by_date:
        candidates = _candidates_by_date(user=user, query=query, filters=filters, as_of=as_of,
                                         scan=bindparam("scan", type_=Integer))
    else:
        candidates = _candidates_by_text_index(user=user, query=query, filters=filters, as_of=as_of,
                                               start=bindparam("start", type_=DateTime(timezone=True)))
    ranked = select(candidates.c.id, _score(candidates, query, as_of).label("score"),
                    func.count().over().label("found")).subquery("ranked")
    stmt = select(ranked.c.id, ranked.c.score, ranked.c.found)
    if after:
        stmt = stmt.where(tuple_(ranked.c.score, ranked.c.id)
                          < tuple_(bindparam("after_score", type_=Float), bindparam("after_id", type_=Uuid)))
    return stmt.order_by(ranked.c.score.desc(), ranked.c.id.desc()).limit(limit)


_BOUND_FILTERS = {"author_id": Uuid, "group_id": Uuid, "tag": String, "kind": String,
                  "since": DateTime(timezone=True), "until": DateTime(timezone=True)}
_STATEMENTS: dict[tuple, object] = {}  # search statements by shape, for every request (values are parameters)


@dataclass(frozen=True)
class Viewer:
    id: object  # the `viewer` parameter, where a statement built once takes the caller's id
    admin: bool = False

    def has_role(self, *roles: str) -> bool:  # as CurrentUser's: an admin has every role
        return self.admin


def _bound_search(*, user: CurrentUser, q: str, filters: PostFilters, key: tuple, build) -> tuple:
    """A search statement for this shape of search (`key`: its kind; which filters, phrase or prefix),
    built once by `build(user=, query=, filters=)` and kept: every value is a parameter — the caller
    (`viewer`, for the one visibility rule), the words, the filters' values. Building one applies the
    visibility rule (to a subquery for relevance), ~2-8 ms of Python, more than the SQL of most searches.
    Returns the statement and its parameters."""
    words, prefix = tsquery_parts(q)
    params = {"viewer": user.id, "q_words": words, "q_prefix": prefix}
    bound = {}
    for name, type_ in _BOUND_FILTERS.items():
        if (value := getattr(filters, name)) is not None:
            params[f"f_{name}"] = value.lower().lstrip("#") if name == "tag" else value
            bound[name] = bindparam(f"f_{name}", type_=type_)
    shape = (*key, words is not None, prefix is not None, tuple(bound), filters.unanswered, filters.has_attachment)
    if (stmt := _STATEMENTS.get(shape)) is None:
        query = _tsquery_of(bindparam("q_words", type_=String) if words is not None else None,
                            bindparam("q_prefix", type_=String) if prefix is not None else None)
        shaped = PostFilters.model_construct(**bound, unanswered=filters.unanswered,
                                             has_attachment=filters.has_attachment)
        stmt = _STATEMENTS[shape] = build(user=Viewer(bindparam("viewer", type_=Uuid)), query=query, filters=shaped)
    return stmt, params


def _bound_ranked(*, user: CurrentUser, q: str, filters: PostFilters, by_date: bool, after: list | None,
                  limit: int):
    """The ranked statement (see _ranked_statement) of this shape of search, and its parameters."""
    stmt, params = _bound_search(
        user=user, q=q, filters=filters, key=("ranked", by_date, bool(after), limit, CANDIDATES),
        build=partial(_ranked_statement, by_date=by_date, after=bool(after), limit=limit))
    return stmt, params | ({"after_score": after[0], "after_id": after[1]} if after else {})


async def _ranked(session: AsyncSession, *, user: CurrentUser, q: str, filters: PostFilters, as_of: datetime,
                  start: datetime, scan: int, after: list | None, limit: int) -> list:
    """A page of the candidates (by date when `scan`, else by the text index in (start, as_of]) by
    score, each row with `found`."""
    stmt, params = _bound_ranked(user=user, q=q, filters=filters, by_date=bool(scan), after=after, limit=limit)
    return (await session.execute(stmt, params | {"as_of": as_of, "start": start, "scan": scan})).all()


async def _sampled_since(session: AsyncSession, filters: list, as_of: datetime) -> datetime | None:
    """The time of the SAMPLE-th newest post (up to `as_of`) passing `filters`, where a sample starts;
    None when fewer pass them: a sample reads them all."""
    return await session.scalar(select(posts.c.created_at)
                                .where(*filters, posts.c.deleted_at.is_(None), posts.c.created_at <= as_of)
                                .order_by(posts.c.created_at.desc()).offset(SAMPLE - 1).limit(1))


async def _first_ranked_page(session: AsyncSession, rank, filters: PostFilters) -> tuple[list, datetime, datetime, int]:
    """The first page in relevance order, and the (as_of, start, scan) later pages reuse.

    The candidates are always the newest CANDIDATES matches; only the way to them changes with how
    common the words are among the newest posts that pass the filters:
    1. read the newest SAMPLE posts by date: enough for a word in a quarter of the posts or more, and
       for every match when no more than SAMPLE posts pass the filters (an author's, a group's);
    2. else, when the sample's density says the newest SCAN_MAX posts hold enough, read that many;
    3. else ask the text index, inside the window the sample's density asks for (7, 30, 90 days;
       a short window lets PostgreSQL combine the text and created_at indexes), or all time when it
       holds too few. Its cost is mostly reading the words' entries in the index, whatever the window,
       so it is asked once (twice at worst), not window after window.
    """
    as_of = utcnow()
    rows = await rank(as_of=as_of, start=EPOCH, scan=SAMPLE)
    found = rows[0].found if rows else 0
    if found >= CANDIDATES:
        return rows, as_of, EPOCH, SAMPLE
    sampled_since = await _sampled_since(session, _ordered_filters(filters), as_of)
    if sampled_since is None:
        return rows, as_of, EPOCH, SAMPLE
    if needed := sampled_scan(found, CANDIDATES):
        rows = await rank(as_of=as_of, start=EPOCH, scan=needed)
        if rows and rows[0].found >= CANDIDATES:
            return rows, as_of, EPOCH, needed
    sampled_days = (as_of - sampled_since).total_seconds() / 86400
    start = _window(as_of, sampled_days, found)
    rows = await rank(as_of=as_of, start=start, scan=0)
    if start != EPOCH and (not rows or rows[0].found < CANDIDATES):
        # short (a window holding 496 of 500): the density it found picks a wider one, not all time
        days = (as_of - start).total_seconds() / 86400
        start = _window(as_of, days, rows[0].found if rows else 0, wider_than=days)
        rows = await rank(as_of=as_of, start=start, scan=0)
        if start != EPOCH and (not rows or rows[0].found < CANDIDATES):
            start = EPOCH
            rows = await rank(as_of=as_of, start=start, scan=0)
    return rows, as_of, start, 0


def _window(as_of: datetime, days: float, found: int, *, wider_than: float = 0) -> datetime:
    """The start of the shortest window (WINDOWS_DAYS) that `found` matches in `days` say holds CANDIDATES,
    wider than `wider_than` days; the epoch when none does. The margin is twice the estimate plus two
    standard deviations of the count (2/sqrt(found)): fifteen matches in the sample are a rough density, and
    erring wide is cheap (a longer created_at range, ~10-30 ms at 1,000,000 posts) where a window that falls
    short costs a second pass through every index entry of the word and the tag (mid word + tag: 90 days
    held 496 of 500, ~100 ms)."""
    needed_days = days * CANDIDATES / found * (2 + 2 / math.sqrt(found)) if found else math.inf
    wide_enough = [d for d in WINDOWS_DAYS if d >= needed_days and d > wider_than]
    return as_of - timedelta(days=wide_enough[0]) if wide_enough else EPOCH


async def _post_page(session: AsyncSession, *, user: CurrentUser, q: str, filters: PostFilters,
                     order: PostOrder, page: PageParams) -> tuple[list[tuple[UUID, float | None]], str | None]:
    after = decode(page.cursor, _post_cursor_columns(order))
    if order == "date":
        return await _newest_by_date(session, user=user, q=q, filters=filters, after=after, page=page)
    rank = partial(_ranked, session, user=user, q=q, filters=filters, after=after, limit=page.limit + 1)
    if after:  # the candidates the first page settled on
        as_of, start, scan = after[2], after[3], after[4]
        rows = await rank(as_of=as_of, start=start, scan=scan)
    else:
        rows, as_of, start, scan = await _first_ranked_page(session, rank, filters)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    cursor = encode_cursor([rows[-1].score, rows[-1].id, as_of, start, scan]) if more else None
    return [(r.id, r.score) for r in rows], cursor


def highlight(fragment: str | None) -> str:
    """ts_headline output as safe HTML: everything escaped, the matches in <mark>."""
    escaped = html.escape(fragment or "", quote=False)
    return escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


async def _post_hits(session: AsyncSession, *, q: str, page: list[tuple[UUID, float | None]]) -> list[PostHit]:
    """The page's posts with their authors and snippets: ts_headline runs for these rows only."""
    if not page:
        return []
    query = tsquery(q)
    columns = [posts.c.id, posts.c.kind, posts.c.group_id, posts.c.hashtags, posts.c.created_at,
               posts.c.reaction_count, posts.c.comment_count,
               func.ts_headline(_regconfig(), posts.c.body, query, HEADLINE).label("snippet"),
               func.ts_headline(_regconfig(), posts.c.title, query, TITLE_HEADLINE).label("title")]
    stmt = (select(*columns, Person).join(Person, Person.id == posts.c.author_id)
            .where(posts.c.id.in_([post_id for post_id, _ in page])))
    rows = {r.id: r for r in (await session.execute(stmt)).all()}
    hits = []
    for post_id, score in page:
        row = rows[post_id]
        hits.append(PostHit(id=post_id, author=PersonSummary.model_validate(row.Person), kind=row.kind,
                            title=highlight(row.title) if row.title is not None else None,
                            snippet=highlight(row.snippet), group_id=row.group_id, hashtags=row.hashtags,
                            comment_count=row.comment_count, reaction_count=row.reaction_count,
                            created_at=row.created_at, score=score))
    return hits


async def search_posts(session: AsyncSession, *, user: CurrentUser, q: str, filters: PostFilters,
                       order: PostOrder, page: PageParams) -> tuple[list[PostHit], str | None]:
    found, next_cursor = await _post_page(session, user=user, q=q, filters=filters, order=order, page=page)
    return await _post_hits(session, q=q, page=found), next_cursor


# --- people and groups ----------------------------------------------------------------------------

def _words(q: str) -> list[str]:
    return [w for w in q.split() if w.strip('"')][:8]


def _word_match(document, word: str, *, fuzzy: bool = True):
    """The word appears in the folded document or, from three letters on and when `fuzzy`, nearly does
    (trigram word similarity: typos). Returns the condition and a similarity for ranking."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # Immutable folding of a parameter: planned as a constant, so the trigram index applies.
    contains = document.like(literal("%").op("||")(unaccented(literal(escaped))).op("||")(literal("%")))
    # Without typos, the index looks up the word's own trigrams ('kub') and ranking needs no similarity;
    # with them, every row sharing a trigram with it ('  k', ' ku', ...) is a candidate to measure.
    if len(word) < 3 or not fuzzy:
        return contains, literal(0.0, Float)
    needle = unaccented(literal(word))
    return or_(contains, needle.op("<%")(document)), func.word_similarity(needle, document)


def _text_match(document, q: str, *, handle=None, fuzzy: bool = True):
    """Every word matches (AND); score: word similarities, plus 1 when the document (which starts with
    the name) or the handle starts with the query."""
    conditions, score = [], literal(0.0, Float)
    for word in _words(q):
        condition, similarity = _word_match(document, word.strip('"'), fuzzy=fuzzy)
        conditions.append(condition)
        score = score + similarity
    start = q.strip('"').lower()
    score = score + case((func.starts_with(document, unaccented(literal(start))), 1.0), else_=0.0)
    if handle is not None:
        score = score + case((func.starts_with(handle, start), 1.0), else_=0.0)
    return (and_(*conditions) if conditions else false()), score


async def custom_plans(session: AsyncSession) -> None:
    """Plan every search statement for its values. asyncpg prepares statements, and after five runs
    PostgreSQL may switch to a generic plan that does not know the word's frequency, the window or the
    group: a 1 ms query (a rare word in all time) became 110 ms, a very common word 50 ms -> 800 ms."""
    # And work_mem: a bitmap of a word's and a tag's index entries (50,000-100,000 posts each at 1,000,000)
    # outgrew the default 4 MB and went lossy: 150,000 rows rechecked for 4,000 matches. Both for the
    # transaction only (SET LOCAL), in one statement.
    await session.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                               "set_config('work_mem', '32MB', true)"))


async def _prefer_indexes(session: AsyncSession, q: str) -> None:
    # A few thousand people or groups look cheap to scan, but the scan evaluates trigram word similarity
    # for every row (~50 times the cost the planner assumes); the trigram index checks only candidates.
    # Words under three letters have no trigram: the index would be read whole (45 ms for 'ma' among
    # 10,000 people) where a scan of the rows takes a few.
    if any(len(word.strip('"')) >= 3 for word in _words(q)):
        await session.execute(text("SET LOCAL enable_seqscan = off"))


def _ranked_page(stmt, score, key, page: PageParams):
    after = decode(page.cursor, [literal(0.0, Float), key])
    ranked = stmt.add_columns(score.label("score")).subquery("ranked")
    outer = select(ranked)
    if after:
        outer = outer.where(tuple_(ranked.c.score, ranked.c.id) < tuple_(literal(after[0], Float), after[1]))
    return outer.order_by(ranked.c.score.desc(), ranked.c.id.desc()).limit(page.limit + 1)


def _split_page(rows: list, page: PageParams):
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, (encode_cursor([rows[-1].score, rows[-1].id]) if more else None)


def people_query(q: str, filters: PeopleFilters | None = None, *, fuzzy: bool = True):
    """Active people whose name, handle, title, department, location or skills match every word."""
    condition, score = _text_match(people.c.search_text, q, handle=people.c.handle, fuzzy=fuzzy)
    stmt = select(people.c.id).where(people.c.active.is_(True), condition)
    if filters and filters.department:
        stmt = stmt.where(func.lower(people.c.department) == filters.department.lower())
    if filters and filters.location:
        stmt = stmt.where(func.lower(people.c.location) == filters.location.lower())
    return stmt, score


async def search_people(session: AsyncSession, *, q: str, filters: PeopleFilters,
                        page: PageParams, fuzzy: bool = True) -> tuple[list[PersonHit], str | None]:
    stmt, score = people_query(q, filters, fuzzy=fuzzy)
    await _prefer_indexes(session, q)
    rows, next_cursor = _split_page((await session.execute(_ranked_page(stmt, score, people.c.id, page))).all(), page)
    found = {p.id: p for p in await session.scalars(select(Person).where(Person.id.in_([r.id for r in rows])))}
    return [PersonHit.model_validate(found[r.id]) for r in rows], next_cursor


def visible_groups(user: CurrentUser):
    """Groups `user` can see (GroupAccess.can_see): all but secret ones, which are for members and admins."""
    if user.has_role("admin"):
        return true()
    mine = select(GroupMember.group_id).where(GroupMember.person_id == user.id)
    return or_(Group.visibility != "secret", Group.all_company.is_(True), Group.id.in_(mine))


def groups_query(user: CurrentUser, q: str, *, names_only: bool = False):
    """Groups `user` can see whose name (and description) match every word; names use ix_groups_name_trgm."""
    document = unaccented(groups.c.name)
    if not names_only:
        document = func.concat_ws(" ", document, unaccented(groups.c.description))
    condition, score = _text_match(document, q)
    return select(groups.c.id).where(visible_groups(user), condition), score


async def search_groups(session: AsyncSession, *, user: CurrentUser, q: str, page: PageParams,
                        names_only: bool = False) -> tuple[list[GroupHit], str | None]:
    stmt, score = groups_query(user, q, names_only=names_only)
    await _prefer_indexes(session, q)
    rows, next_cursor = _split_page((await session.execute(_ranked_page(stmt, score, groups.c.id, page))).all(), page)
    found = {g.id: g for g in await session.scalars(select(Group).where(Group.id.in_([r.id for r in rows])))}
    return [GroupHit.model_validate(found[r.id]) for r in rows], next_cursor


# --- search, suggestions and clicks ---------------------------------------------------------------

async def record_search(session: AsyncSession, *, user: CurrentUser, q: str, search_type: str, result_count: int,
                     first_page: bool = True, filters: list[str] = ()) -> UUID:
    """Record the search on activity.v1 (analytics finds zero-result queries there)."""
    search_id = uuid7()
    await add_event(session, SearchPerformed(search_id=search_id, person_id=user.id, query=q[:QUERY_MAX],
                                             search_type=search_type, result_count=result_count,
                                             first_page=first_page, filters=list(filters)),
                    subject=user.id, actor=user.id)
    return search_id


async def search(session: AsyncSession, *, user: CurrentUser, q: str, search_type: SearchType,
                 page: PageParams, post_filters: PostFilters, people_filters: PeopleFilters,
                 order: PostOrder = "relevance"):
    """One page of results of one type, and the search recorded; returns (items, next_cursor, search_id)."""
    await custom_plans(session)
    if search_type == "posts":
        items, next_cursor = await search_posts(session, user=user, q=q, filters=post_filters, order=order, page=page)
        used = post_filters.used()
    elif search_type == "people":
        items, next_cursor = await search_people(session, q=q, filters=people_filters, page=page)
        used = people_filters.used()
    else:
        items, next_cursor = await search_groups(session, user=user, q=q, page=page)
        used = []
    search_id = await record_search(session, user=user, q=q, search_type=search_type, result_count=len(items),
                                 first_page=page.cursor is None, filters=used)
    return items, next_cursor, search_id


def _prefix_pattern(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _folded_once(value, before: str = ""):
    """`before` + the folded `value` (a parameter), computed once per statement (a scalar subquery, an InitPlan).
    Suggest runs without a transaction, so without custom plans: in a generic plan the folding of a parameter
    is not a constant, and in a row's condition (the trigram index's recheck, the ranking) it ran for every
    row (+1 ms of PostgreSQL CPU for the 1,100 people matching 'ma')."""
    return select(literal(before).op("||")(unaccented(value))).scalar_subquery()


def _typed_words(q: str) -> dict:
    """The words typed, as the prefix patterns `_word_prefixes` takes (w0, w1, ...)."""
    words = [w for w in (w.strip('"') for w in _words(q)) if w]
    return {f"w{i}": _prefix_pattern(w) for i, w in enumerate(words)}


def _word_prefixes(document, words: int):
    """Each of the `words` parameters w0, w1, ... (see _typed_words) starts a word of `document` (' ' + folded
    text, see search.models.name_words): `LIKE '% pre%'` reads the trigram index by the trigrams of a word
    start (' pr', '  p')."""
    return and_(*(document.like(_folded_once(bindparam(f"w{i}", type_=String), "% ")) for i in range(words))) \
        if words else false()


# Suggest's statements are built once per shape (how many words, admin or not), every value a parameter:
# building them was a third of a keystroke's service CPU.

@cache
def _suggest_people_statement(words: int):
    start = bindparam("start", type_=String)
    name_starts = PERSON_NAME_WORDS.like(_folded_once(bindparam("start_pattern", type_=String), " "))
    first = case((name_starts, 1), else_=0) + case((func.starts_with(func.lower(Person.handle), start), 1), else_=0)
    order = (first.desc(), PERSON_NAME_WORDS.collate("C"), people.c.id)
    # ranked on the index's rows alone; only the page's people are read whole (a row is ~3 kB)
    ranked = (select(people.c.id, func.row_number().over(order_by=order).label("position"))
              .where(people.c.active.is_(True), _word_prefixes(PERSON_NAME_WORDS, words))
              .order_by(*order).limit(bindparam("limit", type_=Integer)).subquery("ranked"))
    return select(Person).join(ranked, ranked.c.id == Person.id).order_by(ranked.c.position)


async def suggest_people(session: AsyncSession, *, q: str, limit: int) -> list[PersonHit]:
    """Active people a word of whose name or handle starts with each word typed; those whose name or
    handle starts with it first, then by folded name (byte order: a thousand matches of a two-letter prefix
    sort in a millisecond, where the language's collation took three)."""
    start, words = q.strip('"').lower(), _typed_words(q)
    params = words | {"start": start, "start_pattern": _prefix_pattern(start), "limit": limit}
    return [PersonHit.model_validate(p) for p in await session.scalars(_suggest_people_statement(len(words)), params)]


@cache
def _suggest_groups_statement(words: int, admin: bool):
    caller = Viewer(bindparam("viewer", type_=Uuid), admin=admin)
    first = case((func.starts_with(unaccented(Group.name), _folded_once(bindparam("start", type_=String))), 1), else_=0)
    return (select(Group).where(visible_groups(caller), _word_prefixes(GROUP_NAME_WORDS, words))
            .order_by(first.desc(), Group.name, Group.id).limit(bindparam("limit", type_=Integer)))


async def suggest_groups(session: AsyncSession, *, user: CurrentUser, q: str, limit: int) -> list[GroupHit]:
    """Groups `user` can see a word of whose name starts with each word typed, those starting with it first."""
    words = _typed_words(q)
    stmt = _suggest_groups_statement(len(words), user.has_role("admin"))
    params = words | {"start": q.strip('"'), "viewer": user.id, "limit": limit}
    return [GroupHit.model_validate(g) for g in await session.scalars(stmt, params)]


@cache
def _readable_tag_posts():
    """Per tag of the `tags` parameter, how many of its newest RESTRICTED_SCAN live posts `viewer` may read
    (tags none of them are readable by `viewer` are left out). Built once: the visibility rule on an
    aliased subquery takes SQLAlchemy ~5 ms to construct, the cached statement none."""
    candidates = select(func.unnest(bindparam("tags", type_=ARRAY(String))).label("tag")).subquery("candidates")
    newest = (select(posts.c.id, posts.c.author_id, posts.c.group_id, posts.c.audience, posts.c.deleted_at)
              .where(posts.c.hashtags.contains(pg_array([candidates.c.tag])), posts.c.deleted_at.is_(None))
              .order_by(posts.c.created_at.desc()).limit(RESTRICTED_SCAN).lateral("newest"))
    seen = aliased(Post, newest)  # the one visibility rule, on each scanned post
    return (select(candidates.c.tag, func.count().label("posts")).select_from(candidates.join(newest, true()))
            .where(readable_by(bindparam("viewer", type_=Uuid), seen)).group_by(candidates.c.tag))


@cache
def _suggest_tags_statement():
    """Tags starting with `pattern`: the `limit` most used on posts everyone may read, with that count, and the
    `restricted` most used only on posts some may read, with 0 (to be checked)."""
    tags, pattern = search_tags.c, bindparam("pattern", type_=String)
    open_tags = (select(tags.tag, tags.open_posts.label("posts"))
                 .where(tags.tag.like(pattern), tags.open_posts > 0)
                 .order_by(tags.open_posts.desc(), tags.tag).limit(bindparam("limit", type_=Integer)))
    restricted = (select(tags.tag, literal(0).label("posts"))
                  .where(tags.tag.like(pattern), tags.open_posts == 0, tags.restricted_posts > 0)
                  .order_by(tags.restricted_posts.desc(), tags.tag).limit(bindparam("restricted", type_=Integer)))
    return union_all(open_tags, restricted)


async def suggest_tags(session: AsyncSession, *, user: CurrentUser, prefix: str, limit: int) -> list[TagHit]:
    """Hashtags starting with `prefix`, most used first, from `search_tags` (kept by triggers with the posts).

    A tag on posts every member may read comes with how many of those carry it. A tag only on posts some
    may read (groups, followers only, protected accounts) is checked against the visibility rule: the
    newest RESTRICTED_SCAN live posts with it, for at most RESTRICTED_TAGS * limit such tags (the most
    used first); it is suggested, with how many of those the caller may read, only when there is one.
    So a tag that exists only in posts the caller cannot read is never suggested."""
    needle = prefix.lower().lstrip("#")
    if not needle:
        return []
    rows = (await session.execute(_suggest_tags_statement(), {"pattern": _prefix_pattern(needle), "limit": limit,
                                                               "restricted": RESTRICTED_TAGS * limit})).all()
    found = [r for r in rows if r.posts]
    if to_check := [r.tag for r in rows if not r.posts]:
        found += (await session.execute(_readable_tag_posts(), {"tags": to_check, "viewer": user.id})).all()
    ranked = sorted(found, key=lambda r: (-r.posts, r.tag))[:limit]
    return [TagHit(tag=r.tag, posts=r.posts) for r in ranked]


async def suggest(session: AsyncSession, *, user: CurrentUser, q: str, limit: int):
    """Typeahead for mentions: people, groups and tags matching what was typed; reads only (a keystroke is
    not a search: nothing is recorded, the picked suggestion is reported through record_opened). Runs
    without a transaction (`read_only` route), so no transaction-local settings: its statements read a
    prefix from an index whatever the value, so a generic plan is the same plan."""
    # Typeahead: what was typed so far starts a word of the name or handle (no typo tolerance: the next
    # keystroke narrows it anyway), each served by an index that reads a prefix directly.
    typed = q.lstrip("@")
    found_people = await suggest_people(session, q=typed, limit=limit)
    found_groups = await suggest_groups(session, user=user, q=typed, limit=limit)
    tags = await suggest_tags(session, user=user, prefix=q, limit=limit)
    return found_people, found_groups, tags


async def record_opened(session: AsyncSession, *, user: CurrentUser, search_id: UUID | None, query: str | None,
                        result_type: str, result_id: str, position: int | None) -> None:
    """A client reports that a search result was opened."""
    await add_event(session, SearchResultOpened(search_id=search_id, person_id=user.id, query=query,
                                                result_type=result_type, result_id=result_id, position=position),
                    subject=user.id, actor=user.id)

