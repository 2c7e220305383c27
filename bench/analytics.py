"""Analytics at company scale: ingest rate, `overview` and `segments` latency, and the same numbers
computed by a naive scan of the event log in the same run (the ratio shows what the rollups buy).

    .venv/bin/python bench/analytics.py                       # the issue's size: 10,000 members, 10,000,000 events
    .venv/bin/python bench/analytics.py --events 200000       # a quick relative comparison (~2 min)

Size and time: up to --events (default 10,000,000, the issue's) over --days 60, but ingest stops when
--budget-minutes (default 7) of ingest have passed, so a whole run stays within about 12 minutes on
the 2-core machine; the size reached is printed (`ingest: N events`) and every later figure is for it.

Starts its own embedded PostgreSQL (durable settings) in a temporary folder unless --database-url
names a server. Events are generated as the broker would hand them over (JSON bytes with valid
payloads, ordered roughly by time, 2 % late by up to 7 days, 0.5 % redelivered); the ingest figure
covers decoding the envelopes (`RawEnvelope.from_bytes`, as the consumer does) and
`services.analytics.ingest.service.ingest` in batches (event log insert with dedupe, rollups), with
--workers concurrent writers as several consumer partitions would be. Generation is timed separately
and left out; CPU seconds per million events (this process without generation, and the embedded
PostgreSQL's) are printed too, the figure a shared machine distorts least. The live consumer path
(`EventConsumer` batch mode: decode, the processed_events rows and `ingest` in one transaction per
500-record fetch) is measured on a sample.
Latencies are HTTP requests to the analytics app in-process (auth, query, JSON), not over a socket:
`cached` is what repeated dashboard requests get (the answer is reused until the rollups change),
`cold` clears the cache before every request (a new window, or the first request after a change).
"""

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
warnings.filterwarnings("ignore", module="platformdirs")

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402
from uuid6 import uuid7  # noqa: E402

ACTIVITY_MIX = (  # type, share, is it about a post
    ("hearth.post.viewed", 0.55, True), ("hearth.reaction.added", 0.12, True), ("hearth.comment.created", 0.07, True),
    ("hearth.post.created", 0.05, False), ("hearth.search.performed", 0.06, False),
    ("hearth.message.sent", 0.08, False), ("hearth.notification.read", 0.04, False),
    ("hearth.notification.delivered", 0.02, False), ("hearth.announcement.acknowledged", 0.01, True),
)
DEPARTMENTS = [f"Department {i:02d}" for i in range(20)]
LOCATIONS = ["Paris", "Berlin", "Lisbon", "Austin", "Toronto", "Singapore", "Sydney", "Dublin", "Madrid", "Oslo"]
CLIENTS = ["web"] * 6 + ["ios"] * 2 + ["android"] * 2 + ["api/bot"]


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def server_cpu_seconds(data_dir: Path | None) -> float:
    """CPU seconds the embedded PostgreSQL has used so far: the postmaster with its exited children
    (reaped, so counted in its children times) plus every live backend and helper (0 for a server of
    --database-url, which may not be on this machine)."""
    if data_dir is None:
        return 0.0
    import psutil
    postmaster = psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))
    t = postmaster.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in postmaster.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.NoSuchProcess:
            pass
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Company:
    """A company of `members` people whose `events` happen over the last `days` UTC days."""

    def __init__(self, members: int, days: int, seed: int = 7):
        self.rng = random.Random(seed)
        self.people = [str(uuid7()) for _ in range(members)]  # ids as the services make them (time-ordered)
        self.end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        self.start = self.end - timedelta(days=days)
        self.posts: list[tuple[str, str]] = []  # (post id, author)
        # Uneven engagement: a few people do most things (Pareto weights), 15% never do anything.
        self.weights = [0.0 if self.rng.random() < 0.15 else self.rng.paretovariate(1.2) for _ in self.people]
        types, shares, _ = zip(*ACTIVITY_MIX)
        self.types, self.shares = types, shares
        self.about_post = {t: p for t, _, p in ACTIVITY_MIX}

    def person_events(self) -> list[bytes]:
        out = []
        provisioned = self.start - timedelta(days=400)
        for i, pid in enumerate(self.people):
            person = {"id": pid, "email": f"p{i}@corp.local", "display_name": f"Person {i}",
                      "department": DEPARTMENTS[i % len(DEPARTMENTS)], "location": LOCATIONS[(i * 7) % len(LOCATIONS)],
                      "manager_id": self.people[i % 400] if i >= 400 else None,
                      "hire_date": (date(2026, 1, 1) - timedelta(days=self.rng.randint(0, 3650))).isoformat(),
                      "leader": i < 200, "official": i == 0, "active": True,
                      "updated_at": provisioned.isoformat()}
            out.append(self.envelope("hearth.person.created", None, provisioned, pid, {"person": person}))
        for i in range(1, len(self.people) // 50):  # 2% deactivated during the period
            pid = self.people[-i]
            person = {"id": pid, "email": "x@corp.local", "display_name": "Gone", "active": False,
                      "updated_at": (self.end - timedelta(days=5)).isoformat()}
            out.append(self.envelope("hearth.person.deactivated", None, self.end - timedelta(days=5), pid,
                                     {"person": person}))
        return out

    @staticmethod
    def envelope(type_: str, actor, moment: datetime, subject, data: dict, client: str = "web") -> bytes:
        return json.dumps({"specversion": "1.0", "id": str(uuid7()), "type": type_, "source": "bench",
                           "time": moment.isoformat(), "subject": str(subject), "actor": actor, "client": client,
                           "dataschema": f"{type_}/1", "data": data}).encode()

    @staticmethod
    def other_payload(kind: str, actor: str, moment: datetime) -> dict:
        if kind == "hearth.message.sent":
            return {"message_id": str(uuid7()), "conversation_id": actor, "sender_id": actor, "excerpt": "x",
                    "created_at": moment.isoformat()}
        if kind == "hearth.notification.read":
            return {"person_id": actor, "count": 1}
        return {"kind": "mention", "recipients": [actor]}  # notification.delivered

    def batch(self, n: int, progress: float) -> list[bytes]:
        """`n` events around position `progress` (0..1) of the period; 2% late (up to 7 days), 0.5% duplicated."""
        rng, out = self.rng, []
        span = (self.end - self.start).total_seconds()
        actors = rng.choices(self.people, weights=self.weights, k=n)
        kinds = rng.choices(self.types, weights=self.shares, k=n)
        for actor, kind in zip(actors, kinds):
            moment = self.start + timedelta(seconds=min(span - 1, max(0.0, progress * span + rng.uniform(-3600, 3600))))
            if rng.random() < 0.02:
                moment = max(self.start, moment - timedelta(seconds=rng.uniform(0, 7 * 86400)))
            client = rng.choice(CLIENTS)
            if kind == "hearth.post.created" or (self.about_post[kind] and not self.posts):
                post_id = str(uuid7())
                self.posts.append((post_id, actor))
                out.append(self.envelope("hearth.post.created", actor, moment, post_id, {
                    "post_id": post_id, "author_id": actor, "kind": rng.choice(["update"] * 8 + ["question", "praise"]),
                    "audience": "company", "excerpt": "x", "created_at": moment.isoformat()}, client))
            elif self.about_post[kind]:
                post_id, author = self.posts[-1 - min(len(self.posts) - 1, int(rng.expovariate(1 / 300)))]
                data = {"post_id": post_id, "person_id": actor}
                if kind == "hearth.post.viewed":
                    data |= {"author_id": author, "day": moment.date().isoformat()}
                elif kind == "hearth.reaction.added":
                    data |= {"post_author_id": author, "kind": "like"}
                elif kind == "hearth.comment.created":
                    data = {"comment_id": str(uuid7()), "post_id": post_id, "post_author_id": author, "author_id": actor,
                            "excerpt": "x", "created_at": moment.isoformat()}
                else:
                    data |= {"version": 1}
                out.append(self.envelope(kind, actor, moment, post_id, data, client))
            elif kind == "hearth.search.performed":
                query = rng.choice(["expenses", "holiday policy", "onboarding", "vpn", "okr", "parking", "zz top"])
                out.append(self.envelope(kind, actor, moment, uuid.uuid4(), {
                    "search_id": str(uuid.uuid4()), "person_id": actor, "query": query, "search_type": "posts",
                    "result_count": 0 if query == "zz top" else rng.randint(1, 40)}, client))
            else:
                out.append(self.envelope(kind, actor, moment, uuid.uuid4(), self.other_payload(kind, actor, moment),
                                         client))
            if rng.random() < 0.005:
                out.append(out[-1])  # a redelivery
        return out


async def ingest_all(sessionmaker, company: Company, total: int, batch: int, workers: int,
                     budget_seconds: float = float("inf")) -> tuple[int, float, float, float]:
    from services.analytics.ingest.service import ingest
    from shared.events import RawEnvelope
    queue: asyncio.Queue = asyncio.Queue(maxsize=workers * 2)
    generated = ingested = 0
    gen_seconds = gen_cpu = 0.0

    async def produce():
        nonlocal generated, gen_seconds, gen_cpu
        made, batches = 0, max(1, total // batch)
        for i in range(batches):
            if time.perf_counter() - started > budget_seconds:
                say(f"  ingest budget used up at {made:,} of {total:,} events: the figures below are for this size")
                break
            t0, c0 = time.perf_counter(), time.process_time()
            raw = company.batch(batch, (i + 0.5) / batches)
            gen_seconds += time.perf_counter() - t0
            gen_cpu += time.process_time() - c0
            made += len(raw)
            await queue.put(raw)
            if i % max(1, batches // 20) == 0:
                elapsed = time.perf_counter() - started - gen_seconds
                say(f"  ingested {ingested:,}/{total:,} events" + (f" ({ingested / elapsed:,.0f}/s)" if i else ""))
        generated = made
        for _ in range(workers):
            await queue.put(None)

    async def work():
        nonlocal ingested
        while (raw := await queue.get()) is not None:
            envelopes = [RawEnvelope.from_bytes(r) for r in raw]  # as the consumer decodes them
            async with sessionmaker() as session:
                await ingest(session, envelopes)
                await session.commit()
            ingested += len(raw)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(produce(), *(work() for _ in range(workers)))
    elapsed = time.perf_counter() - started - gen_seconds  # generation runs on the same core: take it out
    return generated, elapsed, gen_seconds, time.process_time() - cpu - gen_cpu


async def live_consumer_path(settings, sessionmaker, company: Company, n: int, fetch: int = 500) -> float:
    """Events/s through the consumer's batch mode (EventConsumer._apply_batch, one transaction per
    fetch of `fetch` records: decode, typed payload, processed_events rows, ingest)."""
    from types import SimpleNamespace

    from services.analytics.ingest.consumers import event_log_consumer
    consumer = event_log_consumer(settings)
    records = [SimpleNamespace(value=r) for r in company.batch(n, 0.999)]
    started = time.perf_counter()
    for i in range(0, len(records), fetch):
        if not await consumer._apply_batch(records[i:i + fetch], sessionmaker):
            raise SystemExit("bench: the consumer refused a generated batch (payloads out of date with shared/events?)")
    return len(records) / (time.perf_counter() - started)


NAIVE_OVERVIEW = """
WITH m AS (SELECT id FROM people WHERE provisioned_at < :hi AND (deactivated_at IS NULL OR deactivated_at >= :hi)),
     a AS MATERIALIZED (SELECT DISTINCT e.day, e.actor_id, e.type = ANY(:contrib) AS c FROM event_log e JOIN m ON m.id = e.actor_id
           WHERE e.day >= :lo_day AND e.day < :end AND e.type = ANY(:activity))
SELECT d::date,
       (SELECT count(DISTINCT actor_id) FROM a WHERE a.day = d::date),
       (SELECT count(DISTINCT actor_id) FROM a WHERE a.day > d::date - 7 AND a.day <= d::date),
       (SELECT count(DISTINCT actor_id) FROM a WHERE a.day > d::date - 28 AND a.day <= d::date),
       (SELECT count(*) FROM m),
       (SELECT count(DISTINCT actor_id) FROM a WHERE a.day >= :start),
       (SELECT count(DISTINCT actor_id) FROM a WHERE a.day >= :start AND c)
FROM generate_series(CAST(:start AS date), CAST(:end AS date) - 1, interval '1 day') AS d ORDER BY 1"""

NAIVE_SEGMENTS = """
WITH m AS (SELECT id, department FROM people WHERE provisioned_at < :hi AND (deactivated_at IS NULL OR deactivated_at >= :hi)),
     a AS (SELECT DISTINCT actor_id FROM event_log WHERE day >= :start AND day < :end AND type = ANY(:activity))
SELECT coalesce(m.department, '(none)'), count(*), count(a.actor_id) FROM m LEFT JOIN a ON a.actor_id = m.id
GROUP BY 1 ORDER BY 1"""


async def measure(client, path: str, runs: int, *, cold: bool = False) -> tuple[list[float], dict]:
    from services.analytics.metrics.cache import RESULTS
    times, body = [], None
    for _ in range(runs):
        if cold:
            RESULTS.clear()
        t0 = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.text
        body = response.json()
    return times, body


async def naive(sessionmaker, sql: str, params: dict, runs: int) -> tuple[list[float], list]:
    times, rows = [], None
    for _ in range(runs):
        async with sessionmaker() as session:
            t0 = time.perf_counter()
            rows = (await session.execute(text(sql), params)).all()
            times.append((time.perf_counter() - t0) * 1000)
    return times, rows


async def run(args) -> None:
    from services.analytics.config import Settings
    from services.analytics.ingest.classify import CONTRIBUTIONS, kind_of
    from services.analytics.main import create_app
    from shared.app import collect_less_often
    from services.analytics.metrics.window import Window
    from shared.db import make_engine, make_sessionmaker
    from shared.devstack.stack import create_databases, drop_databases
    from shared.events import Envelope
    from shared.migrations import upgrade
    from shared.testing import TestKeys

    load_at_start = os.getloadavg()[0]
    server = data_dir = None
    url = args.database_url
    if url is None:
        from shared.devstack.postgres import EmbeddedPostgres
        scratch = None if args.data else Path(tempfile.mkdtemp(prefix="hearth-bench-analytics-"))
        data_dir = Path(args.data).resolve() if args.data else scratch / "data"
        server = EmbeddedPostgres(data_dir, durable=True)
        url = server.start()
        if args.shared_buffers:  # PostgreSQL's default (128 MB) is a laptop setting; a server gets ~25% of RAM
            import asyncpg
            conn = await asyncpg.connect(url)
            await conn.execute(f"ALTER SYSTEM SET shared_buffers = '{args.shared_buffers}'")
            await conn.close()
            server.stop()
            url = server.start()
        say(f"PostgreSQL: embedded, durable (fsync, synchronous commit), shared_buffers {args.shared_buffers or 'default'}")
    name = "hearth_bench_analytics"
    try:
        await drop_databases(url, [name])
        await create_databases(url, [name])
        keys = TestKeys()
        settings = Settings(env="test", database_url=url, database_prefix="hearth_bench_", jwks_json=keys.jwks_json,
                            run_background=False, log_json=False, log_level="WARNING")
        await asyncio.to_thread(upgrade, "analytics", settings.service_database_url)
        engine = make_engine(settings.service_database_url, pool_size=args.workers + 2)
        sessionmaker = make_sessionmaker(engine, service="analytics")
        company = Company(args.members, args.days)
        from services.analytics.ingest.service import ingest
        async with sessionmaker() as session:
            await ingest(session, [Envelope.from_bytes(r) for r in company.person_events()])
            await session.commit()
        say(f"{args.members:,} members; ingesting {args.events:,} events over {args.days} days "
            f"(batches of {args.batch:,}, {args.workers} writers)")
        pg0 = server_cpu_seconds(data_dir)
        done, seconds, gen, cpu = await ingest_all(sessionmaker, company, args.events, args.batch, args.workers,
                                                   args.budget_minutes * 60)
        pg_cpu = server_cpu_seconds(data_dir) - pg0
        async with sessionmaker() as session:
            logged = await session.scalar(text("SELECT count(*) FROM event_log"))
            await session.execute(text("ANALYZE"))
            await session.commit()
        rate = done / seconds
        say(f"ingest: {done:,} events (with redeliveries) in {seconds:.1f} s = {rate:,.0f} events/s "
            f"(generation {gen:.1f} s excluded); event log holds {logged:,}")
        say(f"ingest CPU per million events: bench process {cpu / done * 1e6:.1f} s (decode + ingest, generation "
            f"excluded), PostgreSQL {pg_cpu / done * 1e6:.1f} s" + ("" if data_dir else " (not measured: external server)"))
        live = await live_consumer_path(settings, sessionmaker, company, args.consumer_sample)
        say(f"live consumer path (batch mode, fetches of 500, one writer): {live:,.0f} events/s "
            f"on {args.consumer_sample:,} events")

        app = create_app(settings)
        collect_less_often()  # every service's last start-up step (ASGITransport runs no lifespan)
        headers = keys.headers(uuid.uuid4(), roles=["communications"])
        window = Window.last(28)
        q = f"from={window.start}&to={window.end}"
        # The app's own session dependency, as in production (a test override would be re-analysed by
        # FastAPI on every request, a cost the service does not have).
        app.state.sessionmaker = sessionmaker
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                     headers=headers) as client:
            await client.get(f"/api/v1/analytics/overview?{q}")  # warm PostgreSQL's buffers once
            cold_cpu = {}
            for name, path in (("overview", f"/api/v1/analytics/overview?{q}"),
                               ("segments", f"/api/v1/analytics/segments?by=department&{q}")):
                c0, p0 = time.process_time(), server_cpu_seconds(data_dir)
                cold_cpu[name] = (await measure(client, path, args.cold_runs, cold=True),
                                  (time.process_time() - c0) * 1000 / args.cold_runs,
                                  (server_cpu_seconds(data_dir) - p0) * 1000 / args.cold_runs)
            (oc_times, overview), (sc_times, segments) = cold_cpu["overview"][0], cold_cpu["segments"][0]
            o_times, _ = await measure(client, f"/api/v1/analytics/overview?{q}", args.runs)
            s_times, _ = await measure(client, f"/api/v1/analytics/segments?by=department&{q}", args.runs)
        activity = sorted({t for t, _, _ in ACTIVITY_MIX if kind_of(t)})
        contrib = sorted({t for t in activity if kind_of(t) in CONTRIBUTIONS})
        params = {"hi": window.hi, "start": window.start, "end": window.end, "lo_day": window.start - timedelta(days=27),
                  "activity": activity, "contrib": contrib}
        no_times, naive_rows = await naive(sessionmaker, NAIVE_OVERVIEW, params, args.naive_runs)
        ns_times, naive_segments = await naive(sessionmaker, NAIVE_SEGMENTS, params, args.naive_runs)
        await engine.dispose()

        same = ([(r[1], r[2], r[3]) for r in naive_rows] == [(r["dau"], r["wau"], r["mau"]) for r in overview["series"]]
                and naive_rows[0][4] == overview["members"] and naive_rows[0][5] == overview["active_members"]
                and naive_rows[0][6] == overview["contributors"])
        shown = {s["segment"]: (s["members"], s["active_members"]) for s in segments["items"] if not s["suppressed"]}
        same_segments = shown == {d: (m, a) for d, m, a in naive_segments if m >= 5}
        say(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other "
            f"users (load average now {os.getloadavg()[0]:.1f}, at start {load_at_start:.1f}); "
            f"Python {platform.python_version()}")
        for name, cached, cold, naive_times, equal in (("overview", o_times, oc_times, no_times, same),
                                                       ("segments", s_times, sc_times, ns_times, same_segments)):
            say(f"{name:9} cached p50 {pct(cached, 50):6.1f} ms p99 {pct(cached, 99):6.1f} ms | cold p50 "
                f"{pct(cold, 50):7.1f} ms p99 {pct(cold, 99):7.1f} ms ({args.runs} / {args.cold_runs} requests) | naive scan p50 "
                f"{pct(naive_times, 50):8.1f} ms = {pct(naive_times, 50) / pct(cold, 50):.1f}x cold | same numbers: {equal}")
            say(f"{name:9} cold CPU per request: bench process (app) {cold_cpu[name][1]:.1f} ms, PostgreSQL "
                f"{cold_cpu[name][2]:.1f} ms")
        say(f"window {window.start}..{window.end}: members {overview['members']:,}, active {overview['active_members']:,}, "
            f"MAU {overview['series'][-1]['mau']:,}, organic content {overview['organic_content']:,}")
    finally:
        if server is not None:
            server.stop()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)  # a bench leaves no data behind (unless --data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--cold-runs", type=int, default=20, help="requests with the answer cache cleared first")
    parser.add_argument("--naive-runs", type=int, default=1, help="a naive scan of 10 M events takes minutes")
    parser.add_argument("--consumer-sample", type=int, default=20_000, help="events through the live consumer path")
    parser.add_argument("--budget-minutes", type=float, default=7.0,
                        help="stop ingesting (and measure at the size reached) after this many minutes")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--data", default=None, help="the bench's own server in this folder, kept afterwards (to "
                                                     "look at its plans; the database is rebuilt by every run)")
    parser.add_argument("--shared-buffers", default="1GB", help="for the bench's own server ('' keeps the default)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
