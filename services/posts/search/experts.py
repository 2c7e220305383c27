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

from functools import cache
from uuid import UUID

from sqlalchemy import (
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
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
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
EVIDENCE_COLUMNS = ("author_id", "kind", "best_answer_id", "reaction_count", "comment_count", "created_at")


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


def _topic_param(with_tag: bool):
    return _on_topic(bindparam("topic", type_=String), bindparam("tag", type_=String) if with_tag else None)


@cache
def _ranked_by_date(with_tag: bool, department: bool, location: bool, after: bool):
    """The experts statement (see _ranked_experts) on the evidence of the newest `scan` posts before `as_of` on
    `topic` (or with `tag`) that `viewer` may read; built once per shape for every request (the visibility rule
    on a subquery costs ~5 ms of Python to build), every value a parameter."""
    return _ranked_experts(newest_readable(
        user=Viewer(bindparam("viewer", type_=Uuid)), match=_topic_param(with_tag), filters=[],
        as_of=bindparam("as_of", type_=DateTime(timezone=True)), need=EVIDENCE_POSTS, columns=EVIDENCE_COLUMNS,
        scan=bindparam("scan", type_=Integer)), department=department, location=location, after=after)


@cache
def _evidence_count(with_tag: bool):
    """How many of the newest `scan` posts before `as_of` are on the topic and readable by `viewer` (at most
    EVIDENCE_POSTS)."""
    return select(func.count()).select_from(newest_readable(
        user=Viewer(bindparam("viewer", type_=Uuid)), match=_topic_param(with_tag), filters=[],
        as_of=bindparam("as_of", type_=DateTime(timezone=True)), need=EVIDENCE_POSTS, columns=("id",),
        scan=bindparam("scan", type_=Integer)))


@cache
def _ranked_in_window(with_tag: bool, department: bool, location: bool, after: bool):
    """The experts statement on the newest `EVIDENCE_POSTS` readable posts on the topic in (start, as_of],
    found through the text index."""
    as_of = bindparam("as_of", type_=DateTime(timezone=True))
    matches = (select(*(posts.c[name] for name in EVIDENCE_COLUMNS))
               .where(_topic_param(with_tag)(posts), readable_by(bindparam("viewer", type_=Uuid)),
                      posts.c.created_at > bindparam("start", type_=DateTime(timezone=True)), posts.c.created_at <= as_of)
               .order_by(posts.c.created_at.desc()).limit(EVIDENCE_POSTS).subquery("on_topic"))
    return _ranked_experts(matches, department=department, location=location, after=after)


def _ranked_experts(matches, *, department: bool, location: bool, after: bool):
    """A page of people ranked by their evidence, all of it counted in SQL (summing ~3,000 evidence and skill
    rows in Python cost ~20 ms a request). Per person: posts and articles (not questions) among `matches`
    and the engagement they got, accepted answers (answers to questions among `matches`), the first declared
    skill containing the topic (active people; the filters); only active people who pass the filters.
    Each row also carries `evidence_posts`, how many posts on the topic were found.
    Parameters: topic (and tag), limit, department, location, after_score and after_id for later pages."""
    answerer = (select(Comment.author_id).where(Comment.id == matches.c.best_answer_id, Comment.deleted_at.is_(None))
                .scalar_subquery())
    evidence = select(matches.c.author_id, matches.c.kind, (matches.c.reaction_count + matches.c.comment_count)
                      .label("engagement"), answerer.label("answered_by")).cte("evidence")
    zero, no_skill = literal(0), literal(None, String)
    eligible = [Person.active.is_(True)]
    if department:
        eligible.append(func.lower(Person.department) == func.lower(bindparam("department", type_=String)))
    if location:
        eligible.append(func.lower(Person.location) == func.lower(bindparam("location", type_=String)))
    contains = func.concat("%", unaccented(bindparam("topic", type_=String)), "%")
    skills = func.unnest(Person.skills).table_valued("skill", with_ordinality="n").render_derived()
    declared = (select(Person.id, func.array_agg(aggregate_order_by(skills.c.skill, skills.c.n))[1].label("skill"))
                .join(skills, true())
                .where(people.c.search_text.like(contains), unaccented(skills.c.skill).like(contains), *eligible)
                .group_by(Person.id).subquery("declared"))
    asked = evidence.c.kind == "question"
    contributions = union_all(
        select(evidence.c.author_id.label("person_id"), cast(evidence.c.kind != "article", Integer).label("posts"),
               cast(evidence.c.kind == "article", Integer).label("articles"), evidence.c.engagement,
               zero.label("accepted"), no_skill.label("skill"))
        .where(~asked),  # asking is not knowing; answering is
        select(evidence.c.answered_by, zero, zero, zero, literal(1), no_skill)
        .where(asked, evidence.c.answered_by.is_not(None)),
        select(declared.c.id, zero, zero, zero, zero, declared.c.skill),
    ).subquery("contributions")
    c = contributions.c
    per_person = select(c.person_id, func.sum(c.posts).label("posts"), func.sum(c.articles).label("articles"),
                        func.sum(c.engagement).label("engagement"), func.sum(c.accepted).label("accepted"),
                        func.max(c.skill).label("skill")).group_by(c.person_id).subquery("per_person")
    e = per_person.c
    score = (5 * case((e.skill.is_not(None), 1), else_=0) + 3 * e.accepted + e.posts + 2 * e.articles
             + func.ln(1 + cast(e.engagement, Float)))
    scored = select(per_person, cast(score, Float).label("score")).subquery("scored")
    stmt = (select(scored, select(func.count()).select_from(evidence).scalar_subquery().label("evidence_posts"))
            .where(exists().where(Person.id == scored.c.person_id, *eligible)))
    if after:  # score descending, then id ascending
        after_score = bindparam("after_score", type_=Float)
        stmt = stmt.where(or_(scored.c.score < after_score,
                              and_(scored.c.score == after_score, scored.c.person_id > bindparam("after_id", type_=Uuid))))
    return stmt.order_by(scored.c.score.desc(), scored.c.person_id).limit(bindparam("limit", type_=Integer))


async def _ranked(session: AsyncSession, *, user: CurrentUser, topic: str, filters: PeopleFilters, after: list | None,
                  limit: int) -> list:
    """A page of experts (see _ranked_experts) on the newest `EVIDENCE_POSTS` readable posts on the topic
    (see search's `_first_ranked_page`: the newest posts by date first, the text index for rarer topics)."""
    as_of, tag = utcnow(), _tag(topic)
    shape = (tag is not None, bool(filters.department), bool(filters.location), bool(after))
    params = {"viewer": user.id, "topic": topic, "tag": tag, "as_of": as_of, "limit": limit,
              "department": filters.department, "location": filters.location}
    if after:
        params |= {"after_score": after[0], "after_id": after[1]}
    # how many readable posts on the topic the newest SAMPLE hold says how to find EVIDENCE_POSTS of them: a
    # count, so that the ranking (and its scan of people's skills) runs once for all but the rarest topics
    found = await session.scalar(_evidence_count(tag is not None), params | {"scan": SAMPLE})
    if scan := SAMPLE if found >= EVIDENCE_POSTS else sampled_scan(found, EVIDENCE_POSTS):
        rows = (await session.execute(_ranked_by_date(*shape), params | {"scan": scan})).all()
        if scan == SAMPLE or (rows and rows[0].evidence_posts >= EVIDENCE_POSTS):
            return rows
    start = await window_start(session, [_on_topic(topic)(posts), readable_by(user.id)], as_of=as_of,
                               need=EVIDENCE_POSTS)
    return (await session.execute(_ranked_in_window(*shape), params | {"start": start})).all()


def _why(entry, topic: str) -> str:
    parts = []
    if entry.accepted:
        parts.append(f"{entry.accepted} accepted answer{'s' * (entry.accepted != 1)} on {topic}")
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
    rows = await _ranked(session, user=user, topic=topic, filters=filters, after=after, limit=page.limit + 1)
    shown = rows[: page.limit]
    people_by_id = {p.id: p for p in await session.scalars(select(Person).where(Person.id.in_([r.person_id
                                                                                                for r in shown])))}
    items = [Expert(person=PersonHit.model_validate(people_by_id[r.person_id]), score=round(r.score, 4),
                    why=_why(r, topic),
                    evidence=Evidence(skill=r.skill is not None, accepted_answers=r.accepted,
                                      posts=r.posts + r.articles, engagement=r.engagement))
             for r in shown]
    more = len(rows) > page.limit
    return items, (encode_cursor([shown[-1].score, shown[-1].person_id]) if more else None)
