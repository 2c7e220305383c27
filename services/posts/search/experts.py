"""The expert finder: who knows about a topic, from what they declare and what they did.

Evidence, all of it from posts the caller may read (the same `readable_by` rule as search, so an
answer in a secret group never makes anyone an expert in the eyes of someone outside it):
- skill: a declared skill contains the topic ("Kubernetes" for "kubernetes");
- accepted answers: their comments accepted as the answer to a question on the topic;
- posts: their posts and articles (not questions) on the topic, by text or hashtag, among the newest
  `EVIDENCE_POSTS` readable posts on it;
- engagement: reactions and comments those posts received.

    score = 5 * skill + 3 * accepted_answers + posts + 2 * articles + ln(1 + engagement)
"""

import math
from dataclasses import dataclass
from functools import cache
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    DateTime,
    Float,
    Integer,
    String,
    Uuid,
    any_,
    bindparam,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.content.models import Comment
from services.posts.content.service import readable_by
from services.posts.people.api import Person
from services.posts.search.models import people, posts, unaccented
from services.posts.search.schemas import Evidence, Expert, PeopleFilters, PersonHit
from services.posts.search.service import (
    SAMPLE,
    Viewer,
    custom_plans,
    decode,
    newest_readable,
    record_search,
    sampled_scan,
    tsquery_exact,
    window_start,
)
from shared.auth import CurrentUser
from shared.db import utcnow
from shared.pagination import PageParams, encode_cursor

EVIDENCE_POSTS = 1000
ELIGIBLE_CHUNK = 200  # candidates checked for being active (and the filters) at a time
EVIDENCE_COLUMNS = ("author_id", "kind", "best_answer_id", "reaction_count", "comment_count", "created_at")


@dataclass
class _Found:
    skill: str | None = None
    accepted_answers: int = 0
    posts: int = 0
    articles: int = 0
    engagement: int = 0

    @property
    def score(self) -> float:
        return (5 * (self.skill is not None) + 3 * self.accepted_answers + self.posts + 2 * self.articles
                + math.log1p(self.engagement))


def _tag(topic: str) -> str | None:
    tag = topic.strip().lstrip("#").lower()
    return tag if tag and tag.replace("_", "").isalnum() else None


_FROM_TOPIC = object()


def _on_topic(topic: str, tag=_FROM_TOPIC):
    """The condition 'on the topic' (text or hashtag) for the posts table or a subquery of it. With `topic` a
    parameter, pass `tag` too (a parameter, or None for a topic that is no tag): it cannot be read off then."""
    query, tag = tsquery_exact(topic), (_tag(topic) if tag is _FROM_TOPIC else tag)

    def match(source):
        on_topic = source.c.search_vector.op("@@")(query)
        return or_(on_topic, source.c.hashtags.contains(pg_array([tag]))) if tag is not None else on_topic
    return match


@cache
def _evidence_by_date(with_tag: bool):
    """The evidence of the newest `scan` posts before `as_of` on `topic` (or with `tag`) that `viewer` may
    read, built once for every request (the visibility rule on a subquery costs ~5 ms of Python to build)."""
    match = _on_topic(bindparam("topic", type_=String), bindparam("tag", type_=String) if with_tag else None)
    return _evidence_query(newest_readable(
        user=Viewer(bindparam("viewer", type_=Uuid)), match=match, filters=[],
        as_of=bindparam("as_of", type_=DateTime(timezone=True)), need=EVIDENCE_POSTS, columns=EVIDENCE_COLUMNS,
        scan=bindparam("scan", type_=Integer)))


def _evidence_query(matches):
    """Per post on the topic: its author, kind, engagement and the author of its accepted answer."""
    answerer = (select(Comment.author_id).where(Comment.id == matches.c.best_answer_id, Comment.deleted_at.is_(None))
                .scalar_subquery())
    return select(matches.c.author_id, matches.c.kind, matches.c.reaction_count + matches.c.comment_count, answerer)


async def _topic_posts(session: AsyncSession, user: CurrentUser, topic: str) -> list:
    """Evidence rows of the newest `EVIDENCE_POSTS` readable posts on the topic (see search's
    `_first_ranked_page`: the newest posts by date first, the text index for rarer topics)."""
    match, as_of, tag = _on_topic(topic), utcnow(), _tag(topic)
    by_date = _evidence_by_date(tag is not None)
    params = {"viewer": user.id, "topic": topic, "tag": tag, "as_of": as_of}
    rows = (await session.execute(by_date, params | {"scan": SAMPLE})).all()
    if len(rows) >= EVIDENCE_POSTS:
        return rows
    if scan := sampled_scan(len(rows), EVIDENCE_POSTS):
        rows = (await session.execute(by_date, params | {"scan": scan})).all()
        if len(rows) >= EVIDENCE_POSTS:
            return rows
    where = [match(posts), readable_by(user.id)]
    start = await window_start(session, where, as_of=as_of, need=EVIDENCE_POSTS)
    matches = (select(*(posts.c[name] for name in EVIDENCE_COLUMNS))
               .where(*where, posts.c.created_at > start, posts.c.created_at <= as_of)
               .order_by(posts.c.created_at.desc()).limit(EVIDENCE_POSTS).subquery("on_topic"))
    return (await session.execute(_evidence_query(matches))).all()


async def _post_evidence(session: AsyncSession, found: dict[UUID, _Found], user: CurrentUser, topic: str) -> None:
    """Posts, articles and their engagement by author; accepted answers by the answer's author."""
    for author_id, kind, engagement, answered_by in await _topic_posts(session, user, topic):
        if kind == "question":  # asking is not knowing; answering is
            if answered_by is not None:
                found.setdefault(answered_by, _Found()).accepted_answers += 1
            continue
        entry = found.setdefault(author_id, _Found())
        entry.posts += kind != "article"
        entry.articles += kind == "article"
        entry.engagement += engagement


async def _skill_evidence(session: AsyncSession, found: dict[UUID, _Found], topic: str) -> None:
    contains = func.concat("%", unaccented(literal(topic)), "%")
    skills = func.unnest(Person.skills).table_valued("skill").render_derived()
    rows = await session.execute(select(Person.id, skills.c.skill).join(skills, true())
                                 .where(people.c.search_text.like(contains), unaccented(skills.c.skill).like(contains)))
    for person_id, name in rows:
        entry = found.setdefault(person_id, _Found())
        entry.skill = entry.skill or name


def _why(entry: _Found, topic: str) -> str:
    parts = []
    if entry.accepted_answers:
        parts.append(f"{entry.accepted_answers} accepted answer{'s' * (entry.accepted_answers != 1)} on {topic}")
    if entry.articles:
        parts.append(f"{entry.articles} article{'s' * (entry.articles != 1)} on {topic}")
    if entry.posts:
        parts.append(f"{entry.posts} post{'s' * (entry.posts != 1)} on {topic}")
    if entry.engagement:
        parts.append(f"{entry.engagement} reactions and comments on them")
    if entry.skill:
        parts.append(f"skill: {entry.skill}")
    return ", ".join(parts)


async def experts(session: AsyncSession, *, user: CurrentUser, topic: str, filters: PeopleFilters,
                  page: PageParams) -> tuple[list[Expert], str | None, UUID]:
    """One page of experts on `topic`, and the search recorded."""
    after = decode(page.cursor, [literal(0.0, Float), people.c.id])
    items, next_cursor = await find_experts(session, user=user, topic=topic, filters=filters, page=page, after=after)
    search_id = await record_search(session, user=user, q=topic, search_type="experts", result_count=len(items),
                                    first_page=page.cursor is None, filters=filters.used())
    return items, next_cursor, search_id


async def find_experts(session: AsyncSession, *, user: CurrentUser, topic: str, filters: PeopleFilters,
                       page: PageParams, after: list | None) -> tuple[list[Expert], str | None]:
    """Active people ranked by evidence on `topic` (see the module docstring), best first."""
    await custom_plans(session)
    found: dict[UUID, _Found] = {}
    await _post_evidence(session, found, user, topic)
    await _skill_evidence(session, found, topic)
    # score descending, then id ascending (the canonical text of a UUID sorts as its number, and is cheap)
    ranked = sorted(((entry.score, str(pid), pid) for pid, entry in found.items()), key=lambda r: (-r[0], r[1]))
    if after:
        ranked = [r for r in ranked if r[0] < after[0] or (r[0] == after[0] and r[1] > str(after[1]))]
    eligible = select(Person.id).where(Person.id == any_(bindparam("ids", type_=ARRAY(Uuid))), Person.active.is_(True))
    if filters.department:
        eligible = eligible.where(func.lower(Person.department) == filters.department.lower())
    if filters.location:
        eligible = eligible.where(func.lower(Person.location) == filters.location.lower())
    # who is active (and in the department, ...) is asked for the best candidates only, a chunk at a time
    # until the page is full, not for the thousands the evidence names
    kept: list = []
    for chunk_start in range(0, len(ranked), ELIGIBLE_CHUNK):
        chunk = ranked[chunk_start: chunk_start + ELIGIBLE_CHUNK]
        ok = set(await session.scalars(eligible, {"ids": [pid for _, _, pid in chunk]}))
        kept += [r for r in chunk if r[2] in ok]
        if len(kept) > page.limit:
            break
    ranked = kept
    shown = ranked[: page.limit]
    people_by_id = {p.id: p for p in await session.scalars(select(Person).where(Person.id.in_([i for _, _, i in shown])))}
    items = [Expert(person=PersonHit.model_validate(people_by_id[pid]), score=round(score, 4),
                    why=_why(found[pid], topic),
                    evidence=Evidence(skill=found[pid].skill is not None, accepted_answers=found[pid].accepted_answers,
                                      posts=found[pid].posts + found[pid].articles, engagement=found[pid].engagement))
             for score, _, pid in shown]
    more = len(ranked) > page.limit
    return items, (encode_cursor([shown[-1][0], shown[-1][2]]) if more else None)
