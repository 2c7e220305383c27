"""Search latency at 100,000 and 1,000,000 posts: top-20 post searches (with and without filters, the
known pitfalls: a very common word, a rare word ordered by date), people search, typeahead, experts.

    .venv/bin/python bench/search.py                     # 10,000 people; 100,000 then 1,000,000 posts
    .venv/bin/python bench/search.py --data /tmp/search-bench   # keep the seeded databases, reuse them next time
    .venv/bin/python bench/search.py --data /tmp/search-bench --small 0 --only "group filter"  # one scenario
    .venv/bin/python bench/search.py --posts 200000 --small 50000 --requests 100

A full run takes about 10 minutes on 2 cores: seeding ~1 min + ~5 min (1,000,000 posts, two connections),
then each scenario for at most `--requests` requests or `--seconds` (5 s), whichever comes first; the
tables print p50/p95/p99 per scenario and how many requests made them. With `--data`, the folder
(and its PostgreSQL data) stays after the run: remove it when done.

Starts its own embedded PostgreSQL (durable settings while measuring), migrates the posts database,
seeds people, groups, memberships, follows and posts with bulk SQL (text drawn from a 3,000-word
vocabulary with a Zipf-like law, so word frequencies span 90 % of posts down to a handful), and
measures `search.service.search` / `suggest` / `experts` — the SQL, the Python that shapes the page
and the outbox row of `search.performed` with the request's commit (suggest: read only, on an autocommit
session like its `read_only` route, nothing recorded) — for one ordinary member (in some
groups, following some people) at a fixed concurrency. No HTTP: that cost is the same for every route and is
measured by bench/event_path.py. Not part of `make test`.
"""

import argparse
import asyncio
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

warnings.filterwarnings("ignore", module="platformdirs")

import asyncpg  # noqa: E402

from services.posts.search import experts as expert_finder  # noqa: E402
from services.posts.search import service  # noqa: E402
from services.posts.search.schemas import PeopleFilters, PostFilters  # noqa: E402
from shared.auth import CurrentUser  # noqa: E402
from shared.db import database_url, make_engine, make_sessionmaker, read_sessionmaker  # noqa: E402
from shared.devstack.postgres import EmbeddedPostgres  # noqa: E402
from shared.devstack.stack import create_databases, upgrade  # noqa: E402
from shared.pagination import PageParams  # noqa: E402

DB = "hearth_bench_search_{posts}"
RARE = "zyxquokka"  # planted in RARE_POSTS posts spread over the whole time range
RARE_POSTS = 50
VOCABULARY = 3000
TAGS = ["release", "kubernetes", "hiring", "security", "design", "sales", "onboarding", "offsite", "q4", "infra"]
SKILLS = ["Kubernetes", "Python", "Go", "Terraform", "Sales", "Design", "Security", "Rust", "SQL", "Figma"]
DEPARTMENTS = ["Platform", "Sales", "Design", "Security", "Finance", "People", "Support", "Marketing"]
LOCATIONS = ["Lisbon", "Berlin", "Paris", "London", "Remote", "New York"]
FIRST_NAMES = ["Maria", "João", "Ana", "Pedro", "Chen", "Aisha", "Lars", "Sofia", "Omar", "Yuki", "Ines", "Kofi",
               "Priya", "Mateo", "Lena", "Tomás", "Hana", "Ivan", "Zoe", "Ravi", "Elif", "Noah", "Amara", "Jonas"]
LAST_NAMES = ["Silva", "Müller", "Dubois", "Smith", "Kowalski", "Rossi", "Tanaka", "Okafor", "García", "Nowak",
              "Jensen", "Haddad", "Ivanova", "Costa", "Fischer", "Moreau", "Sato", "Mensah", "Novak", "Lindqvist",
              "Petrov", "Ferreira", "Keller", "Yilmaz", "Andersen", "Bianchi", "Kim", "Nair", "Schulz", "Almeida",
              "O'Brien", "Horvat", "Dimitrov", "Larsen", "Santos", "Weber", "Mäkinen", "Ortiz", "Chopra", "Vogel"]
SYLLABLES = ["ka", "lo", "mi", "ra", "tu", "ve", "zo", "pe", "ni", "sa", "do", "fu", "gi", "ho", "ju", "be"]


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def vocabulary() -> list[str]:
    rng, words = random.Random(7), []
    seen = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) + rng.choice("nrtlmx")
        if word not in seen:
            seen.add(word)
            words.append(word)
    words[49] = "kubernetes"  # a real topic at a mid frequency, for the expert finder
    return words


# --------------------------------------------------------------------------------------------- seed

async def seed_people(conn, people: int) -> None:
    await conn.execute("""
        INSERT INTO people (id, email, handle, display_name, title, skills, leader, official, protected, active, roles,
                            created_at, updated_at)
        SELECT gen_random_uuid(), 'p' || g || '@corp.local', 'p' || g,
               ($2::text[])[1 + g % array_length($2::text[], 1)] || ' ' ||
               ($3::text[])[1 + (g / 7) % array_length($3::text[], 1)],
               (ARRAY['Engineer','Designer','Manager','Analyst','Recruiter'])[1 + g % 5],
               '{}', false, false, g % 20 = 0, true, ARRAY['member'], now(), now()
        FROM generate_series(1, $1) g""", people, FIRST_NAMES, LAST_NAMES)
    await conn.execute("""
        UPDATE people SET department = ($1::text[])[1 + abs(hashtext(id::text)) % array_length($1::text[], 1)],
                          location = ($2::text[])[1 + abs(hashtext(id::text || 'l')) % array_length($2::text[], 1)],
                          skills = ARRAY[($3::text[])[1 + abs(hashtext(id::text || 's')) % 10],
                                         ($3::text[])[1 + abs(hashtext(id::text || 't')) % 10]]""",
                       DEPARTMENTS, LOCATIONS, SKILLS)


async def seed_graph(conn, groups: int) -> None:
    await conn.execute("""
        INSERT INTO groups (id, name, description, visibility, official, all_company, admins_only_posting, archived,
                            provisioned, created_at, updated_at)
        SELECT gen_random_uuid(), 'Group ' || g, 'About topic ' || g,
               CASE WHEN g % 10 = 0 THEN 'secret' WHEN g % 5 = 0 THEN 'private' ELSE 'public' END,
               false, false, false, false, false, now(), now()
        FROM generate_series(1, $1) g""", groups)
    await conn.execute("""
        INSERT INTO group_members (group_id, person_id, role, created_at)
        SELECT g.id, p.id, 'member', now()
        FROM people p CROSS JOIN LATERAL (SELECT id FROM groups WHERE p.id IS NOT NULL ORDER BY random() LIMIT 5) g
        ON CONFLICT DO NOTHING""")
    await conn.execute("""
        INSERT INTO follows (follower_id, followee_id, created_at)
        SELECT p.id, f.id, now()
        FROM people p CROSS JOIN LATERAL (SELECT id FROM people q WHERE q.id <> p.id ORDER BY random() LIMIT 20) f
        ON CONFLICT DO NOTHING""")


async def seed_posts(url: str, count: int, words: list[str], days: int = 730, workers: int = 2) -> None:
    """`count` more posts: 70 % company, 10 % followers-only, 20 % in groups; 2 years of history.

    Batches of 50,000 in time order, `workers` connections at a time (each batch is one statement:
    the time goes into generating text and its tsvector, which runs on one core per connection)."""
    batch = 50_000
    starts = list(range(0, count, batch))
    done = 0

    async def worker():
        nonlocal done
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            while starts:
                start = starts.pop(0)
                await insert_posts(conn, start, min(batch, count - start), count, words, days)
                done += min(batch, count - start)
                say(f"  posts {done:,}/{count:,}")
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(workers)))


async def insert_posts(conn, start: int, n: int, count: int, words: list[str], days: int) -> None:
    await conn.execute("""
        WITH w AS (SELECT $1::text[] AS words, array_length($1::text[], 1) AS size),
             a AS (SELECT array_agg(id) AS ids, count(*) AS n FROM people),
             gr AS (SELECT array_agg(id) AS ids, count(*) AS n FROM groups)
        INSERT INTO posts (id, author_id, kind, title, body, audience, group_id, mentions, hashtags, poll_multiple,
                           must_read, ack_version, version, comment_count, reaction_count, seen_by_count,
                           created_at, updated_at)
        SELECT gen_random_uuid(), a.ids[1 + floor(random() * a.n)::int],
               CASE WHEN g % 10 = 0 THEN 'question' WHEN g % 25 = 0 THEN 'article' ELSE 'update' END,
               CASE WHEN g % 25 = 0 THEN initcap(words[1 + floor(exp(random() * ln(size)))::int - 1]) END,
               body.text,
               CASE WHEN g % 10 = 1 THEN 'followers' WHEN g % 5 = 2 THEN 'group' ELSE 'company' END,
               CASE WHEN g % 5 = 2 THEN gr.ids[1 + floor(random() * gr.n)::int] END,
               '{}', CASE WHEN g % 3 = 0 THEN ARRAY[($2::text[])[1 + floor(exp(random() * ln(10)))::int - 1]]
                          ELSE '{}' END,
               false, false, 1, 1, floor(random() * random() * 12)::int, floor(random() * random() * 30)::int,
               0, ts, ts
        FROM generate_series($3::int, $4::int) g
        CROSS JOIN w CROSS JOIN a CROSS JOIN gr
        -- inserted in time order, as a live table is: created_at follows the physical order (by batch)
        CROSS JOIN LATERAL (SELECT now() - make_interval(days => $5) * (1 - g::float8 / $6)
                                   - random() * interval '1 hour' AS ts) AS t
        CROSS JOIN LATERAL (
            SELECT string_agg(words[floor(exp(random() * ln(size)))::int + 0 * i], ' ') AS text
            FROM generate_series(1, 12 + (g % 7) * 4) AS i) AS body""",
                       words, TAGS, start + 1, start + n, days, count)


async def plant_rare_word(conn) -> None:
    await conn.execute(f"UPDATE posts SET body = body || ' {RARE}' WHERE body NOT LIKE '%{RARE}%' AND id IN "
                       f"(SELECT id FROM posts TABLESAMPLE BERNOULLI (1) ORDER BY random() LIMIT $1)",
                       RARE_POSTS - await conn.fetchval(f"SELECT count(*) FROM posts WHERE body LIKE '%{RARE}%'"))


# --------------------------------------------------------------------------------------------- measure

@dataclass
class Scenario:
    name: str
    kind: str  # posts | people | groups | suggest | experts
    q: str
    filters: dict | None = None
    order: str = "relevance"


def scenarios(words: list[str], searcher_group: str, author: str) -> list[Scenario]:
    very_common, common, mid, rarer = words[0], words[9], words[99], words[1999]
    return [
        Scenario(f"very common word ({very_common!r})", "posts", very_common),
        Scenario("very common word, by date", "posts", very_common, order="date"),
        Scenario(f"common word ({common!r})", "posts", common),
        Scenario(f"mid word ({mid!r})", "posts", mid),
        Scenario(f"uncommon word ({rarer!r})", "posts", rarer),
        Scenario(f"rare word ({RARE!r}, {RARE_POSTS} posts)", "posts", RARE),
        Scenario("rare word, by date", "posts", RARE, order="date"),
        Scenario("rare AND very common", "posts", f"{very_common} {RARE}"),
        Scenario("phrase", "posts", f'"{very_common} {common}"'),
        Scenario("typing: prefix of the last word", "posts", f"{common} {mid[:3]}"),
        Scenario("very common + group filter", "posts", very_common, {"group_id": searcher_group}),
        Scenario("very common + author filter", "posts", very_common, {"author_id": author}),
        Scenario("very common + last 30 days", "posts", very_common, {"since": "30d"}),
        Scenario("very common + questions, unanswered", "posts", very_common, {"unanswered": True}),
        Scenario("mid word + tag filter", "posts", mid, {"tag": "release"}),
        Scenario("rare word + tag filter, by date", "posts", RARE, {"tag": "hiring"}, order="date"),
        Scenario("people: name with a typo", "people", "Kowalsky"),
        Scenario("groups: prefix", "groups", "grou"),
        Scenario("suggest: 'ma'", "suggest", "ma"),
        Scenario("suggest: 'kub'", "suggest", "kub"),
        Scenario("experts: kubernetes", "experts", "kubernetes"),
    ]


def _post_filters(raw: dict | None) -> PostFilters:
    raw = dict(raw or {})
    if raw.get("since") == "30d":
        from datetime import UTC, datetime, timedelta
        raw["since"] = datetime.now(UTC) - timedelta(days=30)
    return PostFilters(**raw)


async def run_one(sessionmakers, user: CurrentUser, s: Scenario) -> int:
    """One request's work: the service call, then the one commit the request's session makes (suggest: its
    route is `read_only`, an autocommit session closed without a commit)."""
    page = PageParams(limit=20, cursor=None)
    sessionmaker, reading = sessionmakers
    if s.kind == "suggest":
        async with reading() as session:
            found_people, found_groups, tags = await service.suggest(session, user=user, q=s.q, limit=5)
            return len(found_people) + len(found_groups) + len(tags)
    async with sessionmaker() as session:
        if s.kind == "experts":
            items, _, _ = await expert_finder.experts(session, user=user, topic=s.q, filters=PeopleFilters(),
                                                      page=page)
            found = len(items)
        else:
            items, _, _ = await service.search(session, user=user, q=s.q, search_type=s.kind, page=page,
                                               post_filters=_post_filters(s.filters), people_filters=PeopleFilters(),
                                               order=s.order)
            found = len(items)
        await session.commit()
        return found


def postgres_cpu_seconds(pg_dir: Path | None) -> float:
    """User + system CPU of the server's processes so far (the postmaster and its children: the pool's
    backends live through a scenario), from /proc; 0 where there is no /proc."""
    try:
        postmaster = int((pg_dir / "postmaster.pid").read_text().split()[0]) if pg_dir else 0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat.parent.name) == postmaster or int(fields[1]) == postmaster:  # ppid
                total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


async def measure(sessionmakers, user: CurrentUser, s: Scenario, requests: int, concurrency: int,
                  seconds: float, pg_dir: Path | None = None) -> dict:
    """`requests` requests, `concurrency` at a time, or as many as start within `seconds`; also the CPU
    each request cost this process (the service functions) and PostgreSQL, which the latencies under
    a shared machine do not show."""
    await run_one(sessionmakers, user, s)  # warm the plan and the pages it touches
    latencies: list[float] = []
    results = 0
    queue = list(range(requests))
    deadline = time.perf_counter() + seconds

    async def worker():
        nonlocal results
        while queue and time.perf_counter() < deadline:
            queue.pop()
            started = time.perf_counter()
            results = await run_one(sessionmakers, user, s)
            latencies.append((time.perf_counter() - started) * 1000)

    started, cpu, pg_cpu = time.perf_counter(), time.process_time(), postgres_cpu_seconds(pg_dir)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    n = len(latencies)
    return {"name": s.name, "results": results, "p50": statistics.median(latencies), "p95": pct(latencies, 95),
            "p99": pct(latencies, 99), "rps": n / elapsed, "requests": n,
            "cpu": (time.process_time() - cpu) * 1000 / n, "pg_cpu": (postgres_cpu_seconds(pg_dir) - pg_cpu) * 1000 / n}


async def run_scenarios(url: str, words: list[str], requests: int, concurrency: int, label: str,
                        only: list[str], seconds: float, pg_dir: Path | None = None) -> list[dict]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute("VACUUM ANALYZE")
        posts = await conn.fetchval("SELECT count(*) FROM posts")
        searcher = await conn.fetchrow("""
            SELECT p.id, p.roles FROM people p JOIN group_members m ON m.person_id = p.id
            JOIN groups g ON g.id = m.group_id AND g.visibility = 'secret' WHERE NOT p.protected LIMIT 1""")
        group = await conn.fetchval("SELECT g.id FROM groups g JOIN group_members m ON m.group_id = g.id "
                                    "WHERE m.person_id = $1 AND g.visibility = 'public' LIMIT 1", searcher["id"])
        author = await conn.fetchval("SELECT author_id FROM posts WHERE audience = 'company' GROUP BY author_id "
                                     "ORDER BY count(*) DESC LIMIT 1")
        frequency = {w: await conn.fetchval(
            "SELECT count(*) FROM posts WHERE search_vector @@ websearch_to_tsquery('public.hearth', $1)", w)
            for w in (words[0], words[9], words[99], words[1999], RARE)}
    finally:
        await conn.close()
    say(f"{label}: {posts:,} posts; matching posts per word: "
        + ", ".join(f"{w} {n:,} ({n / posts:.1%})" for w, n in frequency.items()))
    engine = make_engine(url, pool_size=concurrency)
    sessionmakers = (make_sessionmaker(engine, service="posts"), read_sessionmaker(engine, service="posts"))
    user = CurrentUser(id=searcher["id"], roles=frozenset(searcher["roles"]), scopes=None)
    rows = []
    try:
        for s in scenarios(words, str(group), str(author)):
            if only and not any(part in s.name for part in only):
                continue
            row = await measure(sessionmakers, user, s, requests, concurrency, seconds, pg_dir)
            rows.append(row)
            say(f"  {row['name']:<48} results {row['results']:>3}  p50 {row['p50']:7.2f}  p95 {row['p95']:7.2f}  "
                f"p99 {row['p99']:7.2f} ms  {row['rps']:6.1f} req/s  ({row['requests']} requests)  "
                f"CPU/request: service {row['cpu']:5.1f} ms, PostgreSQL {row['pg_cpu']:5.1f} ms")
    finally:
        await engine.dispose()
    return rows


def table(label: str, rows: list[dict]) -> str:
    header = "| scenario | results | p50 | p95 | p99 (ms) | req/s | requests | CPU/request: service | PostgreSQL (ms) |"
    lines = [f"\n{label}\n", header, "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['results']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['rps']:.0f} "
              f"| {r['requests']} | {r['cpu']:.1f} | {r['pg_cpu']:.1f} |" for r in rows]
    return "\n".join(lines)


async def seed(url: str, *, people: int, groups: int, posts: int, words: list[str], seed_workers: int) -> None:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        if not await conn.fetchval("SELECT count(*) FROM people"):
            started = time.perf_counter()
            await seed_people(conn, people)
            await seed_graph(conn, groups)
            say(f"seeded {people:,} people, {groups} groups, memberships and follows in "
                f"{time.perf_counter() - started:.0f} s")
        if not await conn.fetchval("SELECT count(*) FROM posts"):
            started = time.perf_counter()
            # The GIN indexes are built once at the end (faster than kept up row by row).
            await conn.execute("DROP INDEX IF EXISTS ix_posts_search_hashtags")
            await conn.execute("DROP INDEX IF EXISTS ix_posts_hashtags")
            # The home timelines' fan-out trigger (feeds' migrations 0018, 0021) would cost far more than the posts
            # themselves (100,000 posts: 129 s instead of 8): off while they go in, back on whatever happens,
            # then every timeline rebuilt from its sources as the migration fills them (bench/feeds.py does the same).
            await conn.execute("ALTER TABLE posts DISABLE TRIGGER hearth_home_post_added")
            try:
                await seed_posts(url, posts, words, workers=seed_workers)
            finally:
                await conn.execute("ALTER TABLE posts ENABLE TRIGGER hearth_home_post_added")
            await plant_rare_word(conn)
            await conn.execute("SELECT hearth_home_rebuild(id) FROM people")
            await conn.execute("CREATE INDEX ix_posts_search_hashtags ON posts USING gin (search_vector, hashtags)")
            await conn.execute("CREATE INDEX ix_posts_hashtags ON posts USING gin (hashtags)")
            say(f"seeded {posts:,} posts (with the GIN indexes) in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()


async def prepare(server_url: str, posts: int) -> str:
    name = DB.format(posts=posts)
    await create_databases(server_url, [name])
    conn = await asyncpg.connect(server_url)
    try:  # what a production server would have; the embedded default is 128 MB
        await conn.execute("ALTER SYSTEM SET shared_buffers = '1GB'")
    finally:
        await conn.close()
    return database_url(server_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="measure first at this many posts (0: skip)")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--requests", type=int, default=200, help="per scenario (at most)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="per scenario: no request starts after this (keeps a full run near 10 minutes)")
    parser.add_argument("--seed-workers", type=int, default=2, help="connections inserting posts at once")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--data", "--data-dir", dest="data_dir",
                        help="keep the seeded databases in this folder and reuse them on the next run")
    parser.add_argument("--only", action="append", default=[],
                        help="run only the scenarios whose name contains this text (repeatable)")
    args = parser.parse_args()
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="hearth-bench-search-"))
    words = vocabulary()
    server = EmbeddedPostgres(data_dir / "pg")
    output = []
    try:
        for posts in (args.small, args.posts):
            if not posts:
                continue
            label = f"{posts:,} posts"
            server.durable = False  # fast seeding; restarted with durable settings to measure
            server_url = server.start()
            url = asyncio.run(prepare(server_url, posts))
            upgrade("posts", url)
            asyncio.run(seed(url, people=args.people, groups=args.groups, posts=posts, words=words,
                             seed_workers=args.seed_workers))
            server.stop()
            server.durable = True
            server.start()
            rows = asyncio.run(run_scenarios(url, words, args.requests, args.concurrency, label, args.only,
                                             args.seconds, data_dir / "pg"))
            output.append(table(f"{label}, {args.people:,} people, concurrency {args.concurrency}, at most "
                                f"{args.requests} requests or {args.seconds:g} s per scenario", rows))
            server.stop()
    finally:
        server.stop()
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    print("\n".join(output))


if __name__ == "__main__":
    main()
