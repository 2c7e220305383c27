"""Ingest: log each event once, then update the rollups with one batched upsert per table.

Zulip's pattern (analytics/lib/counts.py, zerver/worker/user_activity.py), with the aggregation done
by PostgreSQL: Python reads from each event only what the rollups need (one flat row: who, which day,
what kind, which posts), the batch is copied into a temporary table in one round trip, and each rollup
is one `INSERT … SELECT … GROUP BY … ON CONFLICT` over it — one upsert per key per batch, keys in
order (so concurrent writers lock rows in the same order), no per-event work in Python beyond the row.
The consumer calls this with a whole fetch; recompute and the benchmark with thousands.
"""

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.ingest.classify import (COMMENT, CONTRIBUTIONS, POST, REACTION, SEARCH, Event, Facts,
                                                as_uuid, client_of, kind_of)
from services.analytics.ingest.partitions import PARTITIONS

EPOCH = date(2000, 1, 1)
BITS_PER_PERIOD = 32
PERSON_EVENTS = {"hearth.person.created", "hearth.person.updated", "hearth.person.deactivated",
                 "hearth.person.reactivated"}
GROUP_EVENTS = {"hearth.group.created", "hearth.group.updated", "hearth.group.member_added",
                "hearth.group.member_removed", "hearth.group.member_role_changed"}

# One row per event of the batch. `posts` are the posts it is about; the columns after it are read
# only for their kind (a comment's id and author, whether a reaction is new and to the post itself,
# a created post's facts, a search's normalised query).
STAGE = "ingest_batch"
STAGE_COLUMNS = ("event_id", "day", "type", "time", "actor_id", "client", "subject", "data", "person", "kind",
                 "contrib", "client_label", "posts", "group_id", "comment_id", "comment_author", "counts",
                 "responds", "author_id", "post_kind", "audience", "query", "zero")
CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE} (
  event_id uuid, day date, type text, time timestamptz, actor_id uuid, client text, subject text, data bytea,
  person uuid, kind text, contrib bool, client_label text, posts uuid[], group_id uuid, comment_id uuid,
  comment_author uuid, counts bool, responds bool, author_id uuid, post_kind text, audience text, query text,
  zero bool);
TRUNCATE {STAGE}"""  # TRUNCATE, not DELETE: temporary tables are never vacuumed


def stage_row(e: Event) -> tuple:
    """The flat row the rollups read (the envelope's own columns first, as the event log stores them)."""
    kind = kind_of(e.type)
    d = e.facts
    row = [e.id, e.day, e.type[:100], e.time, e.actor, e.client[:80] if e.client else None, e.subject[:200],
           e.data_json, None, kind, None, None, None, None, None, None, None, None, None, None, None, None, None]
    if kind is None:
        return tuple(row)
    person = row[8] = e.person
    row[10:13] = kind in CONTRIBUTIONS, client_of(e.client), e.post_ids()
    if kind == POST:
        row[13] = as_uuid(d.get("group_id"))
        row[18:21] = (as_uuid(d.get("author_id")) or e.actor, str(d.get("kind") or "update")[:32],
                      str(d.get("audience") or "")[:16] or None)
    elif kind == COMMENT:
        row[14] = as_uuid(d.get("comment_id")) or as_uuid(e.subject) or e.id
        row[15] = as_uuid(d.get("author_id")) or person
        row[17] = True
    elif kind == REACTION:
        new = not d.get("previous_kind")  # a changed reaction is not a new one
        row[16] = new
        row[17] = new and not d.get("comment_id")  # a reaction to a comment is not a response to the post
    elif kind == SEARCH:
        row[21:23] = search_of(d)
    return tuple(row)


def search_of(facts: Facts) -> tuple[str | None, bool | None]:
    query = facts.get("query") if facts.has("query") else facts.get("q")
    if not isinstance(query, str) or not query.strip():
        return None, None
    results = next((facts.get(k) for k in ("result_count", "results_count", "total", "results") if facts.has(k)),
                   None)
    if isinstance(results, list):
        results = len(results)
    return " ".join(query.lower().split())[:200], results == 0


# Logs the staged events not logged before, and drops the others from the stage (their ids come back).
LOG_FRESH = f"""
WITH fresh AS (
  INSERT INTO event_log (day, event_id, type, time, actor_id, client, subject, data)
  SELECT day, event_id, type, time, actor_id, client, subject, convert_from(data, 'UTF8')::jsonb FROM {STAGE}
  ORDER BY day, event_id
  ON CONFLICT DO NOTHING RETURNING event_id)
DELETE FROM {STAGE} b WHERE NOT EXISTS (SELECT 1 FROM fresh WHERE fresh.event_id = b.event_id) RETURNING b.event_id"""


async def ingest(session: AsyncSession, envelopes: Iterable) -> int:
    """Log events not seen before (dedupe by id) and roll them up; the number newly logged."""
    events = list({e.id: Event.of(e) for e in envelopes}.values())
    if not events:
        return 0
    rows = [stage_row(e) for e in events]
    await PARTITIONS.ensure(session, {r[1] for r in rows})
    await stage(session, rows)
    seen = set((await session.execute(text(LOG_FRESH))).scalars())
    if len(seen) == len(events):
        return 0
    await apply_staged(session, [e for e in events if (e.type in PERSON_EVENTS or e.type in GROUP_EVENTS)
                                 and e.id not in seen])
    await bump_version(session)
    return len(events) - len(seen)


async def stage(session: AsyncSession, rows: list[tuple]) -> None:
    """Copy the batch's rows into the temporary table (binary COPY: one round trip, no SQL text)."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    await raw.execute(CREATE_STAGE)
    await raw.copy_records_to_table(STAGE, records=rows, columns=STAGE_COLUMNS)


async def record_event(session: AsyncSession, envelope, payload) -> None:
    """Consumer handler for every event type (the payload is read generically from the envelope)."""
    await ingest(session, [envelope])


async def bump_version(session: AsyncSession) -> None:
    """Apply the transaction's content deltas to author_day (see models.AuthorDay), then tell metrics'
    cache the rollups changed. Last in the transaction: the row locks they take are held only while the
    transaction commits, and are taken in key order (one statement each), so writers cannot deadlock."""
    await session.execute(text("SELECT author_day_flush()"))
    await session.execute(text("SELECT response_day_flush()"))  # the same for the first-response times
    await session.execute(text("INSERT INTO rollup_state (id, version) VALUES (1, 1) "
                               "ON CONFLICT (id) DO UPDATE SET version = rollup_state.version + 1"))


async def apply(session: AsyncSession, events: Sequence[Event]) -> None:
    """Update every rollup for events already in the log (recompute replays them through here)."""
    if not events:
        return
    await stage(session, [stage_row(e) for e in events])
    await apply_staged(session, [e for e in events if e.type in PERSON_EVENTS or e.type in GROUP_EVENTS])


async def apply_staged(session: AsyncSession, state_events: list[Event]) -> None:
    """Roll up the staged rows (each event exactly once); people and groups first, in time order."""
    for e in sorted(state_events, key=lambda e: e.time):
        if e.type in PERSON_EVENTS:
            await upsert_person(session, e)
        else:
            await apply_group_event(session, e)
    run = session.execute
    new_posts = list((await run(text(UPSERT_POSTS))).scalars())  # first: the rollups below read posts' groups
    if new_posts:  # views that came before their post (or a post whose author or time changed)
        await run(text(POST_FACTS), {"ids": sorted(new_posts, key=lambda u: u.int)})
    changed = (await run(text(ROLLUPS), {"epoch": EPOCH})).all()
    reach = sorted(((post, n) for what, post, n in changed if what == "reach"), key=lambda r: r[0].int)
    if reach:
        await run(text("""
            UPDATE posts SET reach = posts.reach + d.n
            FROM unnest(CAST(:ids AS uuid[]), CAST(:ns AS int[])) AS d(id, n) WHERE posts.post_id = d.id"""),
            {"ids": [r[0] for r in reach], "ns": [r[1] for r in reach]})
    responded = {post for what, post, _ in changed if what == "responded"}
    fresh = set(new_posts)
    await refresh_posts(session, reach_of=fresh, responses_of=fresh | responded)


ACTIVE = f"FROM {STAGE} WHERE kind IS NOT NULL AND person IS NOT NULL"
UPSERT_POSTS = f"""
INSERT INTO posts (post_id, author_id, kind, audience, group_id, client, created_at, reach)
SELECT * FROM (SELECT DISTINCT ON (posts[1]) posts[1], author_id, post_kind, audience, group_id, client_label, time, 0
               FROM {STAGE} WHERE kind = 'post' AND cardinality(posts) > 0 ORDER BY posts[1], time DESC) p
ON CONFLICT (post_id) DO UPDATE SET author_id = excluded.author_id, kind = excluded.kind,
     audience = excluded.audience, group_id = excluded.group_id, client = excluded.client,
     created_at = excluded.created_at
RETURNING post_id"""
PERSON_DAY = f"""
INSERT INTO person_day (day, person_id, activity, contributions)
SELECT day, person, count(*), count(*) FILTER (WHERE contrib) {ACTIVE} GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (day, person_id) DO UPDATE SET activity = person_day.activity + excluded.activity,
    contributions = person_day.contributions + excluded.contributions"""
DAY_BIT = "(1::bigint << ((day - CAST(:epoch AS date)) % 32))"
PERSON_BITS = f"""
INSERT INTO person_bits (person_id, period, active, contrib)
SELECT person, (day - CAST(:epoch AS date)) / 32, bit_or({DAY_BIT}), coalesce(bit_or({DAY_BIT}) FILTER (WHERE contrib), 0)
{ACTIVE} GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (person_id, period) DO UPDATE SET active = person_bits.active | excluded.active,
    contrib = person_bits.contrib | excluded.contrib
WHERE person_bits.active | excluded.active <> person_bits.active
   OR person_bits.contrib | excluded.contrib <> person_bits.contrib"""
CLIENT_DAY = f"""
INSERT INTO person_client_day (day, person_id, client, activity)
SELECT day, person, client_label, count(*) {ACTIVE} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (day, person_id, client) DO UPDATE SET activity = person_client_day.activity + excluded.activity"""
# A post's group: from the event that created it, else from the post as analytics knows it.
GROUP_DAY = f"""
INSERT INTO group_person_day (day, group_id, person_id, activity, contributions)
SELECT b.day, g.group_id, b.person, count(*), count(*) FILTER (WHERE b.contrib)
FROM {STAGE} b CROSS JOIN LATERAL unnest(b.posts) AS x(post_id) LEFT JOIN posts p ON p.post_id = x.post_id
CROSS JOIN LATERAL (SELECT CASE WHEN b.kind = 'post' THEN b.group_id ELSE p.group_id END) AS g(group_id)
WHERE b.kind IS NOT NULL AND b.person IS NOT NULL AND g.group_id IS NOT NULL
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (day, group_id, person_id) DO UPDATE SET activity = group_person_day.activity + excluded.activity,
    contributions = group_person_day.contributions + excluded.contributions"""
# A comment counts once per batch (its first event in time), on the day of that event.
FIRST_COMMENTS = f"""SELECT DISTINCT ON (comment_id) comment_id, posts[1] AS post_id, comment_author, time, day
    {ACTIVE} AND kind = 'comment' AND cardinality(posts) > 0 ORDER BY comment_id, time"""
POST_DAY = f"""
INSERT INTO post_day (post_id, day, views, reactions, comments, acks)
SELECT post_id, day, sum(v)::int, sum(r)::int, sum(c)::int, sum(a)::int FROM (
  SELECT x.post_id, b.day, 1 AS v, 0 AS r, 0 AS c, 0 AS a
    FROM {STAGE} b CROSS JOIN LATERAL unnest(b.posts) AS x(post_id) WHERE b.kind = 'view' AND b.person IS NOT NULL
  UNION ALL SELECT posts[1], day, 0, 1, 0, 0 {ACTIVE} AND kind = 'reaction' AND counts AND cardinality(posts) > 0
  UNION ALL SELECT post_id, day, 0, 0, 1, 0 FROM ({FIRST_COMMENTS}) c
  UNION ALL SELECT posts[1], day, 0, 0, 0, 1 {ACTIVE} AND kind = 'ack' AND cardinality(posts) > 0) t
GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (post_id, day) DO UPDATE SET views = post_day.views + excluded.views,
    reactions = post_day.reactions + excluded.reactions, comments = post_day.comments + excluded.comments,
    acks = post_day.acks + excluded.acks"""
COMMENTS = f"""
INSERT INTO comments (comment_id, post_id, author_id, created_at)
SELECT comment_id, post_id, comment_author, time FROM ({FIRST_COMMENTS}) c
ON CONFLICT (comment_id) DO NOTHING"""
SEARCH_DAY = f"""
INSERT INTO search_day (day, query, searches, zero_results)
SELECT day, query, count(*), count(*) FILTER (WHERE zero) {ACTIVE} AND query IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (day, query) DO UPDATE SET searches = search_day.searches + excluded.searches,
    zero_results = search_day.zero_results + excluded.zero_results"""


def upsert_firsts(table: str, pairs: str) -> str:
    """Add (post, person, first time) rows keeping the earliest time; RETURNING the rows that changed,
    `inserted` true for pairs that are new."""
    return f"""
INSERT INTO {table} (post_id, person_id, first_at)
SELECT post_id, person, min(time) FROM ({pairs}) t GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (post_id, person_id) DO UPDATE SET first_at = excluded.first_at WHERE excluded.first_at < {table}.first_at
RETURNING post_id, person_id, (xmax = 0) AS inserted"""


FIRST_ACKS = upsert_firsts("post_acks", f"SELECT posts[1] AS post_id, person, time {ACTIVE} AND kind = 'ack' "
                                        "AND cardinality(posts) > 0")
# Viewers also carry the post's day and author when the post is known (else POST_FACTS fills them when it is).
FIRST_VIEWS = f"""
INSERT INTO post_viewers (post_id, person_id, first_at, post_day, author_id)
SELECT t.post_id, t.person, min(t.time), (p.created_at AT TIME ZONE 'UTC')::date, p.author_id
FROM (SELECT x.post_id, b.person, b.time FROM {STAGE} b CROSS JOIN LATERAL unnest(b.posts) AS x(post_id)
      WHERE b.kind = 'view' AND b.person IS NOT NULL) t LEFT JOIN posts p ON p.post_id = t.post_id
GROUP BY t.post_id, t.person, p.created_at, p.author_id ORDER BY 1, 2
ON CONFLICT (post_id, person_id) DO UPDATE SET first_at = excluded.first_at WHERE excluded.first_at < post_viewers.first_at
RETURNING post_id, person_id, (xmax = 0) AS inserted"""
POST_FACTS = """
UPDATE post_viewers v SET post_day = (p.created_at AT TIME ZONE 'UTC')::date, author_id = p.author_id
FROM posts p WHERE p.post_id = ANY(:ids) AND v.post_id = p.post_id
  AND (v.post_day, v.author_id) IS DISTINCT FROM ((p.created_at AT TIME ZONE 'UTC')::date, p.author_id)"""
FIRST_RESPONSES = upsert_firsts("post_responders", f"SELECT posts[1] AS post_id, person, time {ACTIVE} AND responds "
                                                   "AND cardinality(posts) > 0")
# Every rollup in one statement (one round trip: a consumer fetch is only 500 events). The parts write
# different tables and read only the stage and posts, which the statement before has brought up to
# date. What comes back: new viewers per post known before this batch (their reach grows; posts created
# in it are recounted), and posts whose first responder moved (their time to first response is recounted).
ROLLUPS = "WITH " + ", ".join(f"r{i} AS ({sql})" for i, sql in enumerate(
    (PERSON_DAY, PERSON_BITS, CLIENT_DAY, GROUP_DAY, POST_DAY, COMMENTS, SEARCH_DAY, FIRST_ACKS))) + f""",
  views AS ({FIRST_VIEWS}),
  responses AS ({FIRST_RESPONSES})
SELECT 'reach', v.post_id, count(*)::int FROM views v JOIN posts p ON p.post_id = v.post_id
WHERE v.inserted AND p.author_id IS DISTINCT FROM v.person_id
  AND NOT EXISTS (SELECT 1 FROM {STAGE} n WHERE n.kind = 'post' AND n.posts[1] = v.post_id)
GROUP BY v.post_id
UNION ALL
SELECT 'responded', post_id, 0 FROM responses GROUP BY post_id"""


async def refresh_posts(session: AsyncSession, *, reach_of: set[UUID], responses_of: set[UUID]) -> None:
    """Recount reach and first response of posts from the sets (exact, whatever the arrival order)."""
    if reach_of:
        await session.execute(text("""
            UPDATE posts p SET reach = (SELECT count(*) FROM post_viewers v
                                        WHERE v.post_id = p.post_id AND v.person_id IS DISTINCT FROM p.author_id)
            WHERE p.post_id = ANY(:ids)"""), {"ids": sorted(reach_of, key=lambda u: u.int)})
    if responses_of:
        await session.execute(text("""
            UPDATE posts p SET first_response_at = (
                SELECT min(r.first_at) FROM post_responders r
                WHERE r.post_id = p.post_id AND r.person_id IS DISTINCT FROM p.author_id
                GROUP BY r.post_id)  -- grouped, so the plan reads the post's rows by primary key instead of
                                     -- walking the first_at index for the smallest value
            WHERE p.post_id = ANY(:ids)"""), {"ids": sorted(responses_of, key=lambda u: u.int)})


async def upsert_person(session: AsyncSession, e: Event) -> None:
    """The people read model: segments' fields, and when someone was provisioned and deactivated."""
    p = e.payload().get("person") or {}
    person_id = as_uuid(p.get("id"))
    if person_id is None:
        return
    active = bool(p.get("active", True)) and e.type != "hearth.person.deactivated"
    values = {"id": person_id, "display_name": str(p.get("display_name") or "")[:200],
              "department": p.get("department"), "location": p.get("location"),
              "manager_id": as_uuid(p.get("manager_id")),
              "hire_date": date.fromisoformat(p["hire_date"]) if p.get("hire_date") else None,
              "leader": bool(p.get("leader")), "official": bool(p.get("official")), "active": active,
              "at": e.time, "deactivated_at": None if active else e.time,
              "updated_at": datetime.fromisoformat(p["updated_at"]) if p.get("updated_at") else e.time}
    await session.execute(text("""
        INSERT INTO people (id, display_name, department, location, manager_id, hire_date, leader, official, active,
                            provisioned_at, deactivated_at, updated_at)
        VALUES (:id, :display_name, :department, :location, :manager_id, :hire_date, :leader, :official, :active,
                :at, :deactivated_at, :updated_at)
        ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, department = excluded.department,
            location = excluded.location, manager_id = excluded.manager_id, hire_date = excluded.hire_date,
            leader = excluded.leader, official = excluded.official, active = excluded.active,
            provisioned_at = least(people.provisioned_at, excluded.provisioned_at),
            deactivated_at = CASE WHEN excluded.active THEN NULL
                                  ELSE coalesce(people.deactivated_at, excluded.deactivated_at) END,
            updated_at = excluded.updated_at
        WHERE people.updated_at <= excluded.updated_at"""), values)


async def apply_group_event(session: AsyncSession, e: Event) -> None:
    d = e.payload()
    if e.type in ("hearth.group.created", "hearth.group.updated"):
        g = d.get("group") or {}
        await session.execute(text("""
            INSERT INTO groups (group_id, name, official, archived) VALUES (:id, :name, :official, :archived)
            ON CONFLICT (group_id) DO UPDATE SET name = excluded.name, official = excluded.official,
                archived = excluded.archived"""),
            {"id": as_uuid(g.get("id")), "name": str(g.get("name") or "")[:200], "official": bool(g.get("official")),
             "archived": bool(g.get("archived"))})
    elif e.type == "hearth.group.member_removed":
        await session.execute(text("DELETE FROM group_members WHERE group_id = :g AND person_id = :p"),
                              {"g": as_uuid(d.get("group_id")), "p": as_uuid(d.get("person_id"))})
    else:
        await session.execute(text("""
            INSERT INTO group_members (group_id, person_id, role) VALUES (:g, :p, :role)
            ON CONFLICT (group_id, person_id) DO UPDATE SET role = excluded.role"""),
            {"g": as_uuid(d.get("group_id")), "p": as_uuid(d.get("person_id")), "role": str(d.get("role", "member"))})
