"""Ingest: log each event once, then update the rollups with one batched upsert per table.

Zulip's pattern (analytics/lib/counts.py, zerver/worker/user_activity.py): deduplicate the batch in
memory, then one `INSERT … ON CONFLICT` per rollup. The consumer calls this with one event; bulk
paths (recompute, the benchmark, a batch consumer) with thousands — the SQL is the same.
"""

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.ingest.classify import (ACK, COMMENT, CONTRIBUTIONS, POST, REACTION, SEARCH, VIEW, Event,
                                                as_uuid, client_of, kind_of)
from services.analytics.ingest.partitions import PARTITIONS

EPOCH = date(2000, 1, 1)
BITS_PER_PERIOD = 32
PERSON_EVENTS = {"hearth.person.created", "hearth.person.updated", "hearth.person.deactivated",
                 "hearth.person.reactivated"}
GROUP_EVENTS = {"hearth.group.created", "hearth.group.updated", "hearth.group.member_added",
                "hearth.group.member_removed", "hearth.group.member_role_changed"}


def in_key_order(rows: dict) -> dict:
    """Rows sorted by key, so every writer takes row locks in one order (no deadlocks between
    concurrent batches); UUIDs compare by their integer, which is much cheaper than UUID.__lt__."""
    return dict(sorted(rows.items(), key=lambda kv: tuple(k.int if isinstance(k, UUID) else k for k in (
        kv[0] if isinstance(kv[0], tuple) else (kv[0],)))))


def period_bit(day: date) -> tuple[int, int]:
    n = (day - EPOCH).days
    return n // BITS_PER_PERIOD, 1 << (n % BITS_PER_PERIOD)


INSERT_EVENTS = text("""
INSERT INTO event_log (day, event_id, type, time, actor_id, client, subject, data)
SELECT d, i, t, tm, a, c, s, j::jsonb FROM unnest(
  CAST(:days AS date[]), CAST(:ids AS uuid[]), CAST(:types AS text[]), CAST(:times AS timestamptz[]),
  CAST(:actors AS uuid[]), CAST(:clients AS text[]), CAST(:subjects AS text[]), CAST(:datas AS text[]))
  AS u(d, i, t, tm, a, c, s, j)
ON CONFLICT DO NOTHING
RETURNING event_id""")


async def ingest(session: AsyncSession, envelopes: Iterable) -> int:
    """Log events not seen before (dedupe by id) and roll them up; the number newly logged."""
    events = list({e.id: Event.of(e) for e in envelopes}.values())
    if not events:
        return 0
    await PARTITIONS.ensure(session, {e.day for e in events})
    result = await session.execute(INSERT_EVENTS, {
        "days": [e.day for e in events], "ids": [e.id for e in events], "types": [e.type[:100] for e in events],
        "times": [e.time for e in events], "actors": [e.actor for e in events],
        "clients": [e.client[:80] if e.client else None for e in events],
        "subjects": [e.subject[:200] for e in events], "datas": [json.dumps(e.data) for e in events]})
    fresh_ids = set(result.scalars())
    fresh = [e for e in events if e.id in fresh_ids]
    await apply(session, fresh)
    if fresh:
        await bump_version(session)
    return len(fresh)


async def bump_version(session: AsyncSession) -> None:
    """Tell metrics' cache the rollups changed. Last in the transaction: the row lock it takes is held
    only while the transaction commits (and it is one row, so no deadlock between writers)."""
    await session.execute(text("INSERT INTO rollup_state (id, version) VALUES (1, 1) "
                               "ON CONFLICT (id) DO UPDATE SET version = rollup_state.version + 1"))


async def record_event(session: AsyncSession, envelope, payload) -> None:
    """Consumer handler for every event type (the payload is read generically from the envelope)."""
    await ingest(session, [envelope])


class Batch:
    """Rollup deltas of a batch of events, merged in memory before one upsert per table."""

    def __init__(self):
        self.person_day = defaultdict(lambda: [0, 0])
        self.bits = defaultdict(lambda: [0, 0])
        self.client_day = defaultdict(int)
        self.group_day = defaultdict(lambda: [0, 0])
        self.post_day = defaultdict(lambda: [0, 0, 0, 0])  # views, reactions, comments, acks
        self.viewers: dict[tuple[UUID, UUID], datetime] = {}
        self.responders: dict[tuple[UUID, UUID], datetime] = {}
        self.acks: dict[tuple[UUID, UUID], datetime] = {}
        self.comments: dict[UUID, tuple] = {}
        self.search = defaultdict(lambda: [0, 0])

    @staticmethod
    def earliest(target: dict, key, moment: datetime) -> None:
        if key not in target or moment < target[key]:
            target[key] = moment


async def apply(session: AsyncSession, events: Sequence[Event]) -> None:
    """Update every rollup for events that were just logged (each exactly once)."""
    if not events:
        return
    events = sorted(events, key=lambda e: e.time)
    for e in events:
        if e.type in PERSON_EVENTS:
            await upsert_person(session, e)
        elif e.type in GROUP_EVENTS:
            await apply_group_event(session, e)
    created = [e for e in events if kind_of(e.type) == POST]
    new_posts = await upsert_posts(session, created)
    post_ids = {p for e in events if kind_of(e.type) for p in e.post_ids()}
    known = await post_facts(session, post_ids)
    batch = Batch()
    for e in events:
        kind = kind_of(e.type)
        if kind is not None:
            add_activity(batch, e, kind, known)
    await write_batch(session, batch, known=known, new_posts=new_posts)


def add_activity(batch: Batch, e: Event, kind: str, known: dict) -> None:
    person, day = e.person, e.day
    if person is None:
        return
    contrib = int(kind in CONTRIBUTIONS)
    row = batch.person_day[(day, person)]
    row[0] += 1
    row[1] += contrib
    period, bit = period_bit(day)
    bits = batch.bits[(person, period)]
    bits[0] |= bit
    if contrib:
        bits[1] |= bit
    batch.client_day[(day, person, client_of(e.client))] += 1
    posts = e.post_ids()
    for post in posts:
        group = as_uuid(e.data.get("group_id")) if kind == POST else known.get(post, (None, None))[1]
        if group is not None:
            g = batch.group_day[(day, group, person)]
            g[0] += 1
            g[1] += contrib
    if kind == SEARCH:
        add_search(batch, e, day)
    if not posts or kind == POST:
        return
    post = posts[0]
    if kind == VIEW:
        for p in posts:
            batch.post_day[(p, day)][0] += 1
            batch.earliest(batch.viewers, (p, person), e.time)
    elif kind == REACTION:
        if e.data.get("previous_kind"):  # a changed reaction, not a new one
            return
        batch.post_day[(post, day)][1] += 1
        if not e.data.get("comment_id"):  # a reaction to a comment is not a response to the post
            batch.earliest(batch.responders, (post, person), e.time)
    elif kind == COMMENT:
        comment_id = as_uuid(e.data.get("comment_id")) or as_uuid(e.subject) or e.id
        if comment_id not in batch.comments:
            batch.comments[comment_id] = (post, as_uuid(e.data.get("author_id")) or person, e.time)
            batch.post_day[(post, day)][2] += 1
        batch.earliest(batch.responders, (post, person), e.time)
    elif kind == ACK:
        batch.post_day[(post, day)][3] += 1
        batch.earliest(batch.acks, (post, person), e.time)


def add_search(batch: Batch, e: Event, day: date) -> None:
    query = e.data.get("query", e.data.get("q"))
    if not isinstance(query, str) or not query.strip():
        return
    results = next((e.data[k] for k in ("result_count", "results_count", "total", "results") if k in e.data), None)
    if isinstance(results, list):
        results = len(results)
    row = batch.search[(day, " ".join(query.lower().split())[:200])]
    row[0] += 1
    row[1] += int(results == 0)


async def post_facts(session: AsyncSession, post_ids: set[UUID]) -> dict[UUID, tuple[UUID | None, UUID | None]]:
    """post -> (author, group) for the posts a batch touches (posts analytics has seen created)."""
    if not post_ids:
        return {}
    rows = await session.execute(text("SELECT post_id, author_id, group_id FROM posts WHERE post_id = ANY(:ids)"),
                                 {"ids": list(post_ids)})
    return {r[0]: (r[1], r[2]) for r in rows}


async def upsert_posts(session: AsyncSession, created: list[Event]) -> list[UUID]:
    rows = {}
    for e in created:
        post = as_uuid(e.data.get("post_id")) or as_uuid(e.subject)
        if post is None:
            continue
        rows[post] = (as_uuid(e.data.get("author_id")) or e.actor, str(e.data.get("kind") or "update")[:32],
                      str(e.data.get("audience") or "")[:16] or None, as_uuid(e.data.get("group_id")),
                      client_of(e.client), e.time)
    if not rows:
        return []
    rows = in_key_order(rows)
    cols = list(zip(*rows.values()))
    await session.execute(text("""
        INSERT INTO posts (post_id, author_id, kind, audience, group_id, client, created_at, reach)
        SELECT *, 0 FROM unnest(CAST(:ids AS uuid[]), CAST(:authors AS uuid[]), CAST(:kinds AS text[]),
             CAST(:audiences AS text[]), CAST(:groups AS uuid[]), CAST(:clients AS text[]),
             CAST(:times AS timestamptz[]))
        ON CONFLICT (post_id) DO UPDATE SET author_id = excluded.author_id, kind = excluded.kind,
             audience = excluded.audience, group_id = excluded.group_id, client = excluded.client,
             created_at = excluded.created_at"""),
        {"ids": list(rows), "authors": list(cols[0]), "kinds": list(cols[1]), "audiences": list(cols[2]),
         "groups": list(cols[3]), "clients": list(cols[4]), "times": list(cols[5])})
    return list(rows)


async def write_batch(session: AsyncSession, b: Batch, *, known: dict, new_posts: list[UUID]) -> None:
    await _upsert_counts(session, "person_day", ("day", "person_id"), ("date", "uuid"), ("activity", "contributions"),
                         b.person_day)
    if b.bits:
        bits = in_key_order(b.bits)
        keys, values = list(bits), list(bits.values())
        await session.execute(text("""
            INSERT INTO person_bits (person_id, period, active, contrib)
            SELECT * FROM unnest(CAST(:people AS uuid[]), CAST(:periods AS int[]), CAST(:active AS bigint[]),
                                 CAST(:contrib AS bigint[]))
            ON CONFLICT (person_id, period) DO UPDATE SET active = person_bits.active | excluded.active,
                contrib = person_bits.contrib | excluded.contrib
            WHERE person_bits.active | excluded.active <> person_bits.active
               OR person_bits.contrib | excluded.contrib <> person_bits.contrib"""),
            {"people": [k[0] for k in keys], "periods": [k[1] for k in keys], "active": [v[0] for v in values],
             "contrib": [v[1] for v in values]})
    await _upsert_counts(session, "person_client_day", ("day", "person_id", "client"), ("date", "uuid", "text"),
                         ("activity",), {k: [v] for k, v in b.client_day.items()})
    await _upsert_counts(session, "group_person_day", ("day", "group_id", "person_id"), ("date", "uuid", "uuid"),
                         ("activity", "contributions"), b.group_day)
    await _upsert_counts(session, "post_day", ("post_id", "day"), ("uuid", "date"),
                         ("views", "reactions", "comments", "acks"), b.post_day)
    await _upsert_counts(session, "search_day", ("day", "query"), ("date", "text"), ("searches", "zero_results"),
                         b.search)
    if b.comments:
        b.comments = in_key_order(b.comments)
        values = list(b.comments.values())
        await session.execute(text("""
            INSERT INTO comments (comment_id, post_id, author_id, created_at)
            SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:posts AS uuid[]), CAST(:authors AS uuid[]),
                                 CAST(:times AS timestamptz[]))
            ON CONFLICT (comment_id) DO NOTHING"""),
            {"ids": list(b.comments), "posts": [v[0] for v in values], "authors": [v[1] for v in values],
             "times": [v[2] for v in values]})
    new_viewers = await _upsert_firsts(session, "post_viewers", b.viewers)
    await _upsert_firsts(session, "post_acks", b.acks)
    await _upsert_firsts(session, "post_responders", b.responders)
    fresh = set(new_posts)
    reach = defaultdict(int)
    for post, person in new_viewers:
        if post not in fresh and post in known and known[post][0] != person:
            reach[post] += 1
    if reach:
        reach = in_key_order(reach)
        await session.execute(text("""
            UPDATE posts SET reach = posts.reach + d.n
            FROM unnest(CAST(:ids AS uuid[]), CAST(:ns AS int[])) AS d(id, n) WHERE posts.post_id = d.id"""),
            {"ids": list(reach), "ns": list(reach.values())})
    await refresh_posts(session, reach_of=fresh, responses_of=fresh | {p for p, _ in b.responders})


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


async def _upsert_counts(session: AsyncSession, table: str, keys: tuple[str, ...], key_types: tuple[str, ...],
                         counters: tuple[str, ...], rows: dict) -> None:
    """One INSERT … ON CONFLICT adding the batch's counts to a per-day rollup."""
    if not rows:
        return
    rows = in_key_order(rows)
    key_rows, value_rows = list(rows), list(rows.values())
    params = {f"k{i}": [k[i] for k in key_rows] for i in range(len(keys))}
    params |= {f"v{i}": [v[i] for v in value_rows] for i in range(len(counters))}
    arrays = [f"CAST(:k{i} AS {t}[])" for i, t in enumerate(key_types)] + [
        f"CAST(:v{i} AS int[])" for i in range(len(counters))]
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    await session.execute(text(
        f"INSERT INTO {table} ({', '.join(keys + counters)}) SELECT * FROM unnest({', '.join(arrays)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"), params)


async def _upsert_firsts(session: AsyncSession, table: str, rows: dict) -> list[tuple[UUID, UUID]]:
    """Add (post, person, first time) rows, keeping the earliest time; the pairs that are new."""
    if not rows:
        return []
    rows = in_key_order(rows)
    keys = list(rows)
    result = await session.execute(text(f"""
        INSERT INTO {table} (post_id, person_id, first_at)
        SELECT * FROM unnest(CAST(:posts AS uuid[]), CAST(:people AS uuid[]), CAST(:times AS timestamptz[]))
        ON CONFLICT (post_id, person_id) DO UPDATE SET first_at = excluded.first_at
        WHERE excluded.first_at < {table}.first_at
        RETURNING post_id, person_id, (xmax = 0) AS inserted"""),
        {"posts": [k[0] for k in keys], "people": [k[1] for k in keys], "times": list(rows.values())})
    return [(r[0], r[1]) for r in result if r[2]]


async def upsert_person(session: AsyncSession, e: Event) -> None:
    """The people read model: segments' fields, and when someone was provisioned and deactivated."""
    p = e.data.get("person") or {}
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
    d = e.data
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
