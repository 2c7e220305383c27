"""Adoption metrics over a window, exactly as DESIGN §6 defines them."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.metrics.activity import Activity, Member, fetch, load_activity
from services.analytics.metrics.cache import cached
from services.analytics.metrics.window import Window
from shared.errors import NotFound

MIN_SEGMENT = 5  # segments with fewer members are suppressed
DIMENSIONS = ("department", "location", "manager", "leader", "tenure", "client")
MEMBER = "{p}.provisioned_at < :hi AND ({p}.deactivated_at IS NULL OR {p}.deactivated_at >= :hi)"
RESPONDED = "first_response_at IS NOT NULL AND first_response_at <= created_at + interval '24 hours'"


class PostNotFound(NotFound):
    code, title = "post-not-found", "Post not found"


class GroupNotFound(NotFound):
    code, title = "group-not-found", "Group not found"


def rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


# ---- content ---------------------------------------------------------------------------------------

@dataclass
class AuthorContent:
    posts: int = 0
    organic: int = 0  # posts that are not announcements + comments, 0 for official accounts
    reach: int = 0
    responded: int = 0


# Content created in W, from the per-author-per-day rollup (ingest.models.AuthorDay): organic content
# leaves out authors who are official accounts now. Reach counts members: viewers who are not members at
# the end of W (deactivated, or provisioned later) are taken out — few people, found through their own views.
CONTENT_DAYS = """
SELECT a.author_id, a.posts, a.organic_posts + a.comments AS organic, a.reach, a.responded,
       coalesce(o.official, false) AS official
FROM author_day a LEFT JOIN people o ON o.id = a.author_id WHERE a.day >= $1 AND a.day < $2"""
NON_MEMBER_VIEWS = f"""
SELECT v.author_id FROM people x JOIN post_viewers v ON v.person_id = x.id
WHERE NOT ({MEMBER.format(p="x").replace(":hi", "$3")}) AND v.post_day >= $1 AND v.post_day < $2
  AND v.person_id IS DISTINCT FROM v.author_id"""
CONTENT_BY_AUTHOR = f"""
WITH a AS (SELECT author_id, posts, organic * (NOT official)::int AS organic, reach, responded FROM ({CONTENT_DAYS}) d
           UNION ALL
           SELECT author_id, 0, 0, -count(*), 0 FROM ({NON_MEMBER_VIEWS}) n GROUP BY author_id)
SELECT author_id, sum(posts)::int, sum(organic)::int, sum(reach)::int, sum(responded)::int FROM a GROUP BY author_id"""
# The same numbers summed over every author: the day totals, less official accounts' organic content
# (a few authors' rows of author_day) and the views of non-members.
OFFICIAL_ORGANIC = """
SELECT coalesce(sum(a.organic_posts + a.comments), 0) FROM people o JOIN author_day a ON a.author_id = o.id
WHERE o.official AND a.day >= $1 AND a.day < $2"""
CONTENT_TOTALS = f"""
SELECT coalesce(sum(posts), 0), coalesce(sum(organic_posts + comments), 0) - ({OFFICIAL_ORGANIC}),
       coalesce(sum(reach), 0) - (SELECT count(*) FROM ({NON_MEMBER_VIEWS}) n), coalesce(sum(responded), 0)
FROM content_day WHERE day >= $1 AND day < $2"""


# Per member (by position in the member list, sent as the array $4): one bytea, no per-author Python objects.
CONTENT_BLOB = f"""
SELECT coalesce(string_agg(int4send((m.i - 1)::int4) || int4send(c.posts) || int4send(c.organic)
                           || int8send(c.reach) || int4send(c.responded), ''::bytea), ''::bytea)
FROM ({CONTENT_BY_AUTHOR}) c (author_id, posts, organic, reach, responded)
JOIN unnest(CAST($4 AS uuid[])) WITH ORDINALITY AS m (id, i) ON m.id = c.author_id"""
CONTENT_ROW = np.dtype([("i", ">i4"), ("posts", ">i4"), ("organic", ">i4"), ("reach", ">i8"), ("responded", ">i4")])


async def content_by_member(session: AsyncSession, window: Window, act: Activity) -> np.ndarray:
    """[members, 4]: posts, organic content, reach and responded posts of each member's content in W."""
    matrix = np.zeros((len(act.members), 4), dtype=np.int64)
    [(blob,)] = await fetch(session, CONTENT_BLOB, window.start, window.end, window.hi, [m.id for m in act.members])
    rows = np.frombuffer(blob, dtype=CONTENT_ROW)
    for column, name in enumerate(("posts", "organic", "reach", "responded")):
        matrix[rows["i"], column] = rows[name]
    return matrix


# Organic content alone (the previous window's, for growth): no reach or responses to work out.
ORGANIC = f"""SELECT coalesce(sum(organic_posts + comments), 0) - ({OFFICIAL_ORGANIC})
FROM content_day WHERE day >= $1 AND day < $2"""


async def organic_content(session: AsyncSession, window: Window) -> int:
    return int((await fetch(session, ORGANIC, window.start, window.end))[0][0])


async def content_totals(session: AsyncSession, window: Window) -> AuthorContent:
    """The content numbers of W over every author, computed in the database (one row back)."""
    return AuthorContent(*(int(n) for n in (await fetch(session, CONTENT_TOTALS, window.start, window.end,
                                                        window.hi))[0]))


async def median_first_response_seconds(session: AsyncSession, window: Window) -> float | None:
    """Over the posts created in W and responded to within 24 h: each day's values come from
    response_day (ingest.models.ResponseDay), the same float8 seconds the posts give, so the same median."""
    value = await session.scalar(text("""
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s)
        FROM response_day r CROSS JOIN LATERAL unnest(r.seconds) s WHERE r.day >= :s AND r.day < :e"""),
        {"s": window.start, "e": window.end})
    return round(float(value), 1) if value is not None else None


# ---- overview --------------------------------------------------------------------------------------

def people_numbers(act: Activity, rows: np.ndarray | None = None) -> dict:
    active, contrib, engaged = act.active_in_w(), act.contributors_in_w(), act.engaged()
    if rows is not None:
        active, contrib, engaged = active[rows], contrib[rows], engaged[rows]
    members = int(len(active))
    n_active, n_contrib = int(active.sum()), int(contrib.sum())
    return {"members": members, "active_members": n_active, "active_rate": rate(n_active, members),
            "engaged_members": int(engaged.sum()), "contributors": n_contrib,
            "contributor_rate": rate(n_contrib, members)}


def content_numbers(content: list[AuthorContent]) -> dict:
    posts = sum(c.posts for c in content)
    return {"organic_content": sum(c.organic for c in content), "posts": posts,
            "average_social_reach": round(sum(c.reach for c in content) / posts, 2) if posts else None,
            "response_rate": rate(sum(c.responded for c in content), posts)}


@cached
async def overview(session: AsyncSession, window: Window) -> dict:
    act = await load_activity(session, window, people=False)
    previous = await organic_content(session, window.previous())
    series = act.series()
    numbers = people_numbers(act) | content_numbers([await content_totals(session, window)])
    mau_end = series["mau"][-1] if series["mau"] else 0
    days = [window.start.fromordinal(window.start.toordinal() + i) for i in range(window.days)]
    return {
        "start": window.start, "end": window.end, **numbers,
        "organic_content_previous": previous,
        "organic_content_growth": rate(numbers["organic_content"] - previous, previous),
        "stickiness": rate(sum(series["dau"]) / len(days), mau_end) if days else None,
        "median_time_to_first_response_seconds": await median_first_response_seconds(session, window),
        "series": [{"day": d, "dau": series["dau"][i], "wau": series["wau"][i], "mau": series["mau"][i]}
                   for i, d in enumerate(days)],
    }


# ---- segments --------------------------------------------------------------------------------------

def tenure_band(hire: date | None, end: date) -> str:
    if hire is None:
        return "unknown"
    years = (end - hire).days / 365.25
    return "< 1 year" if years < 1 else "1-3 years" if years < 3 else "3-5 years" if years < 5 else "5+ years"


async def segment_of(session: AsyncSession, by: str, act: Activity) -> dict[str, list[int]]:
    """segment label -> member rows (a member can be in several client segments)."""
    groups: dict[str, list[int]] = defaultdict(list)
    if by == "client":
        rows = await session.execute(text("""
            SELECT DISTINCT client, person_id FROM person_client_day WHERE day >= :s AND day < :e"""),
            {"s": act.window.start, "e": act.window.end})
        for client, person in rows:
            if person in act.index:
                groups[client].append(act.index[person])
        return groups
    names = {}
    if by == "manager":
        ids = list({m.manager_id for m in act.members if m.manager_id})
        names = dict((await session.execute(text("SELECT id, display_name FROM people WHERE id = ANY(:ids)"),
                                            {"ids": ids})).all()) if ids else {}
    for i, m in enumerate(act.members):
        groups[label(by, m, act.window, names)].append(i)
    return groups


def label(by: str, m: Member, window: Window, names: dict) -> str:
    if by == "department":
        return m.department or "(none)"
    if by == "location":
        return m.location or "(none)"
    if by == "leader":
        return "leaders" if m.leader else "non-leaders"
    if by == "tenure":
        return tenure_band(m.hire_date, window.end)
    if m.manager_id is None:
        return "(no manager)"
    return f"{names.get(m.manager_id, 'unknown')} ({m.manager_id})"


@cached
async def segments(session: AsyncSession, window: Window, by: str) -> dict:
    act = await load_activity(session, window)
    content = await content_by_member(session, window, act)
    network = people_numbers(act)
    items = []
    for name, rows in sorted((await segment_of(session, by, act)).items()):
        if len(rows) < MIN_SEGMENT:
            items.append({"segment": name, "suppressed": True})
            continue
        idx = np.array(rows, dtype=int)
        mine = AuthorContent(*(int(n) for n in content[idx].sum(axis=0)))
        items.append({"segment": name, "suppressed": False, **people_numbers(act, idx), **content_numbers([mine])})
    return {"start": window.start, "end": window.end, "by": by, "min_members": MIN_SEGMENT,
            "network_active_rate": network["active_rate"], "items": items}


async def barriers(session: AsyncSession, window: Window, by: str) -> dict:
    """Segments whose active rate is below half the network's."""
    cut = await segments(session, window, by)
    network = cut["network_active_rate"] or 0
    items = [s for s in cut["items"] if not s["suppressed"] and s["active_rate"] is not None
             and s["active_rate"] < network / 2]
    return {"start": window.start, "end": window.end, "by": by, "network_active_rate": cut["network_active_rate"],
            "threshold": round(network / 2, 4), "items": items}


async def engagement_received(session: AsyncSession, window: Window) -> dict[UUID, int]:
    """Author -> distinct other people who commented on or reacted to their posts in W."""
    rows = await session.execute(text("""
        SELECT p.author_id, count(DISTINCT r.person_id) FROM post_responders r JOIN posts p ON p.post_id = r.post_id
        WHERE r.first_at >= :lo AND r.first_at < :hi AND r.person_id <> p.author_id GROUP BY p.author_id"""),
        {"lo": window.lo, "hi": window.hi})
    return dict(rows.all())


async def champions(session: AsyncSession, window: Window, by: str, per_segment: int) -> dict:
    act = await load_activity(session, window)
    received = await engagement_received(session, window)
    items = []
    for name, rows in sorted((await segment_of(session, by, act)).items()):
        if len(rows) < MIN_SEGMENT:
            items.append({"segment": name, "suppressed": True, "champions": []})
            continue
        ranked = sorted((m for m in (act.members[i] for i in rows) if received.get(m.id)),
                        key=lambda m: (-received[m.id], m.display_name))[:per_segment]
        items.append({"segment": name, "suppressed": False, "champions": [
            {"person_id": m.id, "display_name": m.display_name, "engagement_received": received[m.id]}
            for m in ranked]})
    return {"start": window.start, "end": window.end, "by": by, "items": items}


# ---- lists -----------------------------------------------------------------------------------------

async def top_people(session: AsyncSession, window: Window, limit: int) -> dict:
    rows = await session.execute(text("""
        SELECT d.person_id, p.display_name, p.department, sum(d.contributions) AS c, sum(d.activity) AS a,
               count(*) AS days
        FROM person_day d JOIN people p ON p.id = d.person_id
        WHERE d.day >= :s AND d.day < :e AND p.provisioned_at < :hi AND (p.deactivated_at IS NULL OR p.deactivated_at >= :hi)
        GROUP BY d.person_id, p.display_name, p.department ORDER BY c DESC, a DESC, d.person_id LIMIT :n"""),
        {"s": window.start, "e": window.end, "hi": window.hi, "n": limit})
    return {"start": window.start, "end": window.end, "items": [
        {"person_id": r[0], "display_name": r[1], "department": r[2], "contributions": r[3], "activity": r[4],
         "active_days": r[5]} for r in rows]}


async def top_groups(session: AsyncSession, window: Window, limit: int, only: set[UUID] | None = None) -> dict:
    rows = await session.execute(text("""
        WITH act AS (SELECT group_id, count(DISTINCT person_id) AS people, sum(activity) AS activity,
                            sum(contributions) AS contributions
                     FROM group_person_day WHERE day >= :s AND day < :e GROUP BY group_id),
             made AS (SELECT group_id, count(*) AS posts FROM posts
                      WHERE created_at >= :lo AND created_at < :hi AND group_id IS NOT NULL GROUP BY group_id)
        SELECT act.group_id, g.name, act.people, act.activity, act.contributions, coalesce(made.posts, 0)
        FROM act LEFT JOIN made USING (group_id) LEFT JOIN groups g USING (group_id)
        WHERE CAST(:only AS uuid[]) IS NULL OR act.group_id = ANY(CAST(:only AS uuid[]))
        ORDER BY act.contributions DESC, act.activity DESC, act.group_id LIMIT :n"""),
        {"s": window.start, "e": window.end, "lo": window.lo, "hi": window.hi, "n": limit,
         "only": list(only) if only is not None else None})
    return {"start": window.start, "end": window.end, "items": [
        {"group_id": r[0], "name": r[1], "active_people": r[2], "activity": r[3], "contributions": r[4],
         "posts": r[5]} for r in rows]}


async def content_types(session: AsyncSession, window: Window) -> dict:
    """Per post kind: posts created in W, average reach, engagement rate (reactions + comments per reached person)."""
    rows = await session.execute(text("""
        WITH p AS (SELECT post_id, kind, reach FROM posts WHERE created_at >= :lo AND created_at < :hi),
             e AS (SELECT d.post_id, sum(d.reactions + d.comments) AS n FROM post_day d JOIN p USING (post_id)
                   GROUP BY d.post_id)
        SELECT p.kind, count(*), avg(p.reach), sum(p.reach), coalesce(sum(e.n), 0)
        FROM p LEFT JOIN e USING (post_id) GROUP BY p.kind ORDER BY count(*) DESC, p.kind"""),
        {"lo": window.lo, "hi": window.hi})
    return {"start": window.start, "end": window.end, "items": [
        {"kind": kind, "posts": n, "average_reach": round(float(avg), 2), "engagement_rate": rate(int(eng), int(reach))}
        for kind, n, avg, reach, eng in rows]}


async def post_report(session: AsyncSession, post_id: UUID) -> dict:
    row = (await session.execute(text("""
        SELECT p.post_id, p.author_id, p.kind, p.audience, p.group_id, p.created_at, p.reach, p.first_response_at,
               coalesce(sum(d.views), 0), coalesce(sum(d.reactions), 0), coalesce(sum(d.comments), 0),
               coalesce(sum(d.acks), 0)
        FROM posts p LEFT JOIN post_day d USING (post_id) WHERE p.post_id = :id AND p.created_at IS NOT NULL
        GROUP BY p.post_id"""), {"id": post_id})).first()
    if row is None:
        raise PostNotFound()
    audience = await audience_size(session, group_id=row[4], audience=row[3], author=row[1])
    seen_by = await session.scalar(text("""
        SELECT count(*) FROM post_viewers v JOIN people x ON x.id = v.person_id
        WHERE v.post_id = :id AND x.deactivated_at IS NULL AND v.person_id IS DISTINCT FROM :author"""),
        {"id": post_id, "author": row[1]})
    first = (row[7] - row[5]).total_seconds() if row[7] else None
    return {"post_id": row[0], "author_id": row[1], "kind": row[2], "group_id": row[4], "created_at": row[5],
            "seen_by": seen_by, "audience": audience, "reach_rate": rate(seen_by, audience) if audience else None,
            "views": row[8], "reactions": row[9], "comments": row[10], "acknowledgements": row[11],
            "time_to_first_response_seconds": first}


async def audience_size(session: AsyncSession, *, group_id: UUID | None, audience: str | None,
                        author: UUID | None) -> int | None:
    """Current members who could see the post, its author excluded (None for followers-only posts)."""
    if group_id is not None:
        return await session.scalar(text("""
            SELECT count(*) FROM group_members g JOIN people p ON p.id = g.person_id
            WHERE g.group_id = :g AND p.deactivated_at IS NULL AND p.id IS DISTINCT FROM :a"""),
            {"g": group_id, "a": author})
    if audience == "followers":
        return None
    return await session.scalar(text("SELECT count(*) FROM people WHERE deactivated_at IS NULL "
                                     "AND id IS DISTINCT FROM :a"), {"a": author})


async def post_owner(session: AsyncSession, post_id: UUID) -> tuple[UUID | None, UUID | None, str | None]:
    row = (await session.execute(text("SELECT author_id, group_id, kind FROM posts WHERE post_id = :id "
                                      "AND created_at IS NOT NULL"), {"id": post_id})).first()
    if row is None:
        raise PostNotFound()
    return row[0], row[1], row[2]


async def group_report(session: AsyncSession, group_id: UUID, window: Window) -> dict:
    group = (await session.execute(text("SELECT name, official, archived FROM groups WHERE group_id = :g"),
                                   {"g": group_id})).first()
    if group is None:
        raise GroupNotFound()
    row = (await session.execute(text(f"""
        SELECT (SELECT count(*) FROM group_members WHERE group_id = :g),
               (SELECT count(DISTINCT d.person_id) FROM group_person_day d
                  JOIN group_members m ON m.group_id = d.group_id AND m.person_id = d.person_id
                WHERE d.group_id = :g AND d.day >= :s AND d.day < :e),
               count(*), count(*) FILTER (WHERE {RESPONDED}),
               count(*) FILTER (WHERE kind = 'question' AND first_response_at IS NULL),
               (SELECT count(*) FROM comments c JOIN posts q ON q.post_id = c.post_id
                WHERE q.group_id = :g AND c.created_at >= :lo AND c.created_at < :hi)
        FROM posts WHERE group_id = :g AND created_at >= :lo AND created_at < :hi"""),
        {"g": group_id, "s": window.start, "e": window.end, "lo": window.lo, "hi": window.hi})).first()
    members, active, posts, responded, unanswered, comments = row
    return {"group_id": group_id, "name": group[0], "official": group[1], "start": window.start, "end": window.end,
            "members": members, "active_members": active, "active_rate": rate(active, members), "posts": posts,
            "comments": comments, "unanswered_questions": unanswered, "response_rate": rate(responded, posts)}


async def announcement_report(session: AsyncSession, post_id: UUID, by: str) -> dict:
    author, group_id, kind = await post_owner(session, post_id)
    audience_sql = ("SELECT p.* FROM people p JOIN group_members g ON g.person_id = p.id AND g.group_id = :g"
                    if group_id else "SELECT p.* FROM people p")
    rows = (await session.execute(text(f"""
        SELECT a.id, a.department, a.location, a.leader, a.hire_date, a.manager_id,
               EXISTS (SELECT 1 FROM post_acks k WHERE k.post_id = :post AND k.person_id = a.id)
        FROM ({audience_sql}) a WHERE a.deactivated_at IS NULL AND a.id IS DISTINCT FROM :author"""),
        {"g": group_id, "post": post_id, "author": author})).all()
    today = Window.last(1).end
    cuts: dict[str, list[bool]] = defaultdict(list)
    for pid, department, location, leader, hire, manager, acked in rows:
        name = {"department": department or "(none)", "location": location or "(none)",
                "leader": "leaders" if leader else "non-leaders", "tenure": tenure_band(hire, today),
                "manager": str(manager) if manager else "(no manager)"}.get(by, department or "(none)")
        cuts[name].append(acked)
    items = [{"segment": name, "suppressed": True} if len(v) < MIN_SEGMENT else
             {"segment": name, "suppressed": False, "audience": len(v), "acknowledged": sum(v),
              "acknowledgement_rate": rate(sum(v), len(v))} for name, v in sorted(cuts.items())]
    acked = sum(1 for r in rows if r[6])
    return {"post_id": post_id, "kind": kind, "by": by, "audience": len(rows), "acknowledged": acked,
            "acknowledgement_rate": rate(acked, len(rows)), "items": items}


async def leaders(session: AsyncSession, window: Window) -> dict:
    act = await load_activity(session, window)
    rows = np.array([i for i, m in enumerate(act.members) if m.leader], dtype=int)
    leader_ids = [act.members[i].id for i in rows]
    numbers = people_numbers(act, rows) if len(rows) else people_numbers(act, np.array([], dtype=int))
    post = (await session.execute(text(f"""
        SELECT count(*), avg(reach), count(*) FILTER (WHERE {RESPONDED}),
               avg((SELECT count(*) FROM post_responders r WHERE r.post_id = p.post_id AND r.person_id <> p.author_id))
        FROM posts p WHERE created_at >= :lo AND created_at < :hi AND author_id = ANY(:ids)"""),
        {"lo": window.lo, "hi": window.hi, "ids": leader_ids})).first()
    replies = (await session.execute(text("""
        SELECT count(*), count(DISTINCT c.post_id) FROM comments c JOIN posts p ON p.post_id = c.post_id
        WHERE c.created_at >= :lo AND c.created_at < :hi AND c.author_id = ANY(:ids)
          AND NOT (p.author_id = ANY(:ids))"""), {"lo": window.lo, "hi": window.hi, "ids": leader_ids})).first()
    employee_posts = await session.scalar(text("""
        SELECT count(*) FROM posts WHERE created_at >= :lo AND created_at < :hi AND NOT (author_id = ANY(:ids))"""),
        {"lo": window.lo, "hi": window.hi, "ids": leader_ids})
    answered = await session.scalar(text("""
        SELECT count(*) FROM posts p WHERE p.created_at >= :lo AND p.created_at < :hi AND NOT (p.author_id = ANY(:ids))
          AND EXISTS (SELECT 1 FROM comments c WHERE c.post_id = p.post_id AND c.author_id = ANY(:ids))"""),
        {"lo": window.lo, "hi": window.hi, "ids": leader_ids})
    return {"start": window.start, "end": window.end, "leaders": numbers["members"],
            "active_leaders": numbers["active_members"], "active_rate": numbers["active_rate"],
            "posts": post[0], "average_reach": round(float(post[1]), 2) if post[1] is not None else None,
            "response_rate": rate(post[2], post[0]),
            "average_engaged_people": round(float(post[3]), 2) if post[3] is not None else None,
            "replies_to_employees": replies[0], "employee_posts": employee_posts,
            "employee_posts_with_leader_reply": answered,
            "leader_reply_rate": rate(answered, employee_posts)}


async def search(session: AsyncSession, window: Window, limit: int) -> dict:
    params = {"s": window.start, "e": window.end, "n": limit}
    totals = (await session.execute(text("SELECT coalesce(sum(searches), 0), coalesce(sum(zero_results), 0) "
                                         "FROM search_day WHERE day >= :s AND day < :e"), params)).first()
    top = await session.execute(text("""
        SELECT query, sum(searches), sum(zero_results) FROM search_day WHERE day >= :s AND day < :e
        GROUP BY query ORDER BY sum(searches) DESC, query LIMIT :n"""), params)
    zero = await session.execute(text("""
        SELECT query, sum(zero_results) FROM search_day WHERE day >= :s AND day < :e
        GROUP BY query HAVING sum(zero_results) > 0 ORDER BY sum(zero_results) DESC, query LIMIT :n"""), params)
    return {"start": window.start, "end": window.end, "searches": totals[0], "zero_result_searches": totals[1],
            "zero_result_rate": rate(totals[1], totals[0]),
            "top_queries": [{"query": q, "searches": n, "zero_results": z} for q, n, z in top],
            "zero_result_queries": [{"query": q, "searches": n} for q, n in zero]}


async def clients(session: AsyncSession, window: Window) -> dict:
    act = await load_activity(session, window)
    active = int(act.active_in_w().sum())
    cuts = await segment_of(session, "client", act)
    items = [{"client": c, "active_people": len(rows), "share": rate(len(rows), active)}
             for c, rows in sorted(cuts.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    return {"start": window.start, "end": window.end, "active_members": active, "items": items}


async def administered_groups(session: AsyncSession, person_id: UUID) -> set[UUID]:
    rows = await session.execute(text("SELECT group_id FROM group_members WHERE person_id = :p "
                                      "AND role IN ('owner', 'admin')"), {"p": person_id})
    return set(rows.scalars())
