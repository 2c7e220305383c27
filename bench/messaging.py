"""Chat benchmark: two messaging replicas, many sockets, sender -> recipient latency across replicas,
raw aiokafka produce -> consume on the same broker, and memory per idle socket.

    .venv/bin/python bench/messaging.py          # the full run: 2,000 sockets, 300 msg/s for 60 s, 10,000 idle (< 8 min)
    .venv/bin/python bench/messaging.py --sockets 200 --rate 50 --seconds 15 --idle 200 --raw-seconds 5  # a quick look

It needs a file-descriptor limit above the sockets it opens (each socket is a descriptor in this client
and one in a replica): it raises its soft limit to the hard one and refuses to start when that is too low.

It starts its own embedded PostgreSQL (durable settings), a fresh Tansu broker and two messaging
processes (uvicorn, websockets sans-I/O, no per-message deflate, no access log); no posts service: tokens
are minted with a key whose JWKS the replicas are given, people are written into messaging's directory
read model. Half the people hold a socket on replica A, their partners on replica B; each message is
sent over the sender's socket (`message.send`) and timed until the partner's socket on the OTHER
replica receives the `message.created` frame (outbox -> relay -> Kafka -> fan-out -> frames from the
database -> socket). The client runs on the same machine as everything else.
"""

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
warnings.filterwarnings("ignore", module="platformdirs")

import httpx  # noqa: E402
import psutil  # noqa: E402
import uvloop  # noqa: E402
import websockets  # noqa: E402

DB_PREFIX = "hearth_bench_"
PING_SECONDS = 25


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def row(label: str, ms: list[float]) -> str:
    return (f"| {label} | {len(ms)} | {percentile(ms, 50):.2f} | {percentile(ms, 90):.2f} | {percentile(ms, 99):.2f} "
            f"| {max(ms) if ms else float('nan'):.2f} |")


# ------------------------------------------------------------------------------------------- the stack


class Stack:
    def __init__(self, args):
        from shared.auth import SigningKey
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="hearth-bench-msg-"))
        self.key = SigningKey(SigningKey.generate_pem())
        self.jwks = json.dumps({"keys": [self.key.public_jwk()]})
        self.processes: list[subprocess.Popen] = []
        self.urls: list[str] = []

    def token(self, person: uuid.UUID) -> str:
        return self.key.sign(subject=person, roles=["member"], scopes=None, ttl=timedelta(hours=2), issuer="hearth",
                             audience="hearth")

    def start(self) -> None:
        from shared.devstack.broker import TansuBroker
        from shared.devstack.ports import free_port
        from shared.devstack.postgres import EmbeddedPostgres
        from shared.devstack.stack import SERVICES, drop_databases, prepare_databases, prepare_topics

        self.postgres = EmbeddedPostgres(self.root / "pgdata", durable=not self.args.no_durable)
        self.server_url = self.postgres.start()
        asyncio.run(drop_databases(self.server_url, [DB_PREFIX + s for s in SERVICES]))
        prepare_databases(self.server_url, DB_PREFIX)
        self.broker = TansuBroker(log_file=self.root / "broker.log")
        self.bootstrap = self.broker.start()
        prepare_topics(self.bootstrap)
        say(f"PostgreSQL {self.server_url} ({'not ' if self.args.no_durable else ''}durable), Tansu {self.bootstrap}, databases migrated")
        env = os.environ | {"HEARTH_DATABASE_URL": self.server_url, "HEARTH_DATABASE_PREFIX": DB_PREFIX,
                            "HEARTH_KAFKA_BOOTSTRAP": self.bootstrap, "HEARTH_KAFKA_FETCH_MAX_WAIT_MS": "20",
                            # Tansu answers a waiting fetch only when the wait ends: the fan-out reader's wait is
                            # the chat's latency floor, the directory's a poll that nothing here waits for.
                            "HEARTH_MESSAGING_FANOUT_FETCH_MAX_WAIT_MS": str(self.args.fanout_wait_ms),
                            "HEARTH_MESSAGING_DIRECTORY_FETCH_MAX_WAIT_MS": "100",
                            "HEARTH_JWKS_JSON": self.jwks, "HEARTH_ENV": "dev", "HEARTH_LOG_LEVEL": "WARNING",
                            "HEARTH_DATABASE_POOL_SIZE": str(self.args.pool_size),
                            # REST rate limits cost a write per request in the set-up (sockets are not REST)
                            "HEARTH_RATE_LIMITS_ENABLED": "false"}
        for name in ("a", "b"):
            port = free_port()
            log = open(self.root / f"messaging-{name}.log", "ab")
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "services.messaging.main:app", "--host", "127.0.0.1", "--port",
                 str(port), "--no-access-log", "--log-level", "warning", "--ws", "websockets-sansio",
                 "--ws-per-message-deflate", "false", "--ws-max-size", "65536"],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
            self.urls.append(f"http://127.0.0.1:{port}")
        for url in self.urls:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} not ready; logs in {self.root}")
                time.sleep(0.2)
        say(f"messaging replicas A={self.urls[0]} B={self.urls[1]}; logs in {self.root}")

    def cpu_seconds(self) -> list[float]:
        """CPU time (user + system) of each replica: per message, a figure a busy machine distorts less."""
        return [sum(psutil.Process(p.pid).cpu_times()[:2]) for p in self.processes]

    def postgres_cpu_seconds(self) -> float:
        """CPU time of the PostgreSQL server: the postmaster, its live backends and the ones that exited."""
        pid = int((self.root / "pgdata" / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        own = postmaster.cpu_times()
        total = own.user + own.system + own.children_user + own.children_system
        for child in postmaster.children():
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:  # exited meanwhile: counted in children_* from now on
                pass
        return total

    def profile(self, folder: str, seconds: float) -> list[subprocess.Popen]:
        """py-spy (installed separately) sampling each replica for the latency phase, as speedscope files."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        return [subprocess.Popen([py_spy, "record", "--pid", str(p.pid), "--duration", str(int(seconds)), "--rate", "200",
                                  "--nonblocking", "--format", "speedscope", "--output",
                                  str(Path(folder) / f"replica-{name}.json")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for name, p in zip("ab", self.processes)]

    def rss(self) -> list[int]:
        return [psutil.Process(p.pid).memory_info().rss for p in self.processes]

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        for part in ("broker", "postgres"):
            if hasattr(self, part):
                getattr(self, part).stop()
        if not self.args.keep_temp:
            shutil.rmtree(self.root, ignore_errors=True)


async def add_people(stack: Stack, people: list[uuid.UUID]) -> None:
    """Messaging's directory read model, as the people consumer would have filled it."""
    import asyncpg
    from shared.db import database_url
    dsn = database_url(stack.server_url, DB_PREFIX + "messaging").replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "directory_people", columns=["id", "email", "display_name", "leader", "official", "protected", "active",
                                         "roles", "updated_at"],
            records=[(p, f"{p}@bench.local", "Bench", False, False, False, True, ["member"],
                      __import__("datetime").datetime.now(__import__("datetime").UTC)) for p in people])
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------- sockets


class Client:
    """One person's socket: answers the heartbeat, records latency of messages it did not send."""

    def __init__(self, person: uuid.UUID, url: str, token: str, pending: dict, latencies: list):
        self.person, self.url, self.token = person, url, token
        self.pending, self.latencies = pending, latencies
        self.conn = None
        self.tasks: list[asyncio.Task] = []

    async def open(self) -> None:
        ws = self.url.replace("http://", "ws://") + "/api/v1/messaging/ws"
        self.conn = await websockets.connect(ws, compression=None, max_queue=64, open_timeout=60, ping_interval=None)
        await self.conn.send(json.dumps({"type": "hello", "token": self.token}))
        welcome = json.loads(await self.conn.recv())
        assert welcome["type"] == "welcome", welcome
        self.tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._ping())]

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                now = time.perf_counter()
                if '"message.created"' not in raw:
                    continue
                frame = json.loads(raw)
                data = frame["data"]
                if data["sender_id"] != str(self.person):
                    t0 = self.pending.pop(data["client_msg_id"], None)
                    if t0 is not None:
                        self.latencies.append((now - t0) * 1000)
        except websockets.ConnectionClosed:
            pass

    async def _ping(self) -> None:
        await asyncio.sleep(random.uniform(0, PING_SECONDS))
        try:
            while True:
                await self.conn.send('{"type":"ping"}')
                await asyncio.sleep(PING_SECONDS)
        except websockets.ConnectionClosed:
            pass

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.conn is not None:
            await self.conn.close()


async def open_all(clients: list[Client], concurrency: int = 100) -> int:
    """Open every socket (at most `concurrency` handshakes at a time); returns how many failed."""
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one(c):
        async with gate:
            try:
                await c.open()
            except Exception as exc:
                c.conn = None
                failures.append(repr(exc))

    await asyncio.gather(*(one(c) for c in clients))
    if failures:
        say(f"{len(failures)} sockets failed to open, e.g. {failures[0]}")
    return len(failures)


# ------------------------------------------------------------------------------------------- phases


async def latency_phase(stack: Stack, args) -> tuple[list[float], int, int]:
    pairs = args.sockets // 2
    people = [uuid.uuid4() for _ in range(pairs * 2)]
    await add_people(stack, people)
    conversations: list[str] = []
    async with httpx.AsyncClient(timeout=30) as http:
        gate = asyncio.Semaphore(10)

        async def start(i):
            async with gate:
                response = await http.post(f"{stack.urls[0]}/api/v1/conversations/direct/{people[pairs + i]}/messages",
                                           headers={"Authorization": f"Bearer {stack.token(people[i])}"},
                                           json={"body": "hello"})
                response.raise_for_status()
                return response.json()["conversation_id"]

        conversations = await asyncio.gather(*(start(i) for i in range(pairs)))
    say(f"{pairs} direct conversations created")
    pending: dict[str, float] = {}
    latencies: list[float] = []
    clients = [Client(p, stack.urls[0 if i < pairs else 1], stack.token(p), pending, latencies)
               for i, p in enumerate(people)]
    t = time.monotonic()
    await open_all(clients)
    say(f"{len(clients)} sockets open ({pairs} on A, {pairs} on B) in {time.monotonic() - t:.1f}s")
    # The client's own full collections (2,000 sockets' objects) would stall every receive for as long:
    # what is alive now lives to the end of the run.
    gc.collect()
    gc.freeze()
    idle_before, idle_at = stack.cpu_seconds(), time.monotonic()
    await asyncio.sleep(5)  # the replicas' CPU with the sockets open and nothing sent (heartbeats, polls)
    idle_rate = (sum(stack.cpu_seconds()) - sum(idle_before)) / (time.monotonic() - idle_at)

    total = int(args.rate * args.seconds)
    cpu_before, pg_before, cpu_at = stack.cpu_seconds(), stack.postgres_cpu_seconds(), time.monotonic()
    profilers = stack.profile(args.py_spy, args.seconds + 5) if args.py_spy else []
    client_before = time.process_time()  # this client shares the cores: its own CPU is part of the picture
    rng = random.Random(7)
    start_at = time.perf_counter()
    send_errors = 0
    for n in range(total):
        delay = start_at + n / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        i = rng.randrange(pairs)
        sender = clients[i] if rng.random() < 0.5 else clients[pairs + i]
        if sender.conn is None:
            send_errors += 1
            continue
        msg_id = f"b{n}"
        pending[msg_id] = time.perf_counter()
        try:
            await sender.conn.send(json.dumps({"type": "message.send", "conversation_id": conversations[i],
                                               "body": f"bench message {n}", "client_msg_id": msg_id}))
        except websockets.ConnectionClosed:
            send_errors += 1
            pending.pop(msg_id, None)
    elapsed = time.perf_counter() - start_at
    say(f"sent {total} messages in {elapsed:.1f}s ({total / elapsed:.0f}/s); waiting for stragglers")
    deadline = time.monotonic() + args.wait
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    lost = len(pending)
    client_cpu = time.process_time() - client_before
    cpu = [after - before for before, after in zip(cpu_before, stack.cpu_seconds())]
    pg = stack.postgres_cpu_seconds() - pg_before
    idle = idle_rate * (time.monotonic() - cpu_at)
    say(f"replicas idle: {idle_rate * 1000:.0f} ms of CPU per second together; net of that, "
        f"{max(sum(cpu) - idle, 0) / max(total, 1) * 1000:.2f} ms per message")
    say(f"replica CPU per message: {sum(cpu) / max(total, 1) * 1000:.2f} ms (A {cpu[0]:.1f} s, B {cpu[1]:.1f} s "
        f"for {total} messages); PostgreSQL CPU per message: {pg / max(total, 1) * 1000:.2f} ms"
        + (f" (with {lost} messages not yet delivered: their remaining work is not counted)" if lost else ""))
    say(f"this client's CPU per message: {client_cpu / max(total, 1) * 1000:.2f} ms ({client_cpu:.1f} s; "
        f"{args.sockets} sockets, pings, sends and frames, on the same cores)")
    for p in profilers:
        await asyncio.to_thread(p.wait)
    if profilers:
        say(f"py-spy profiles of the latency phase in {args.py_spy}/replica-[ab].json (speedscope)")
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return latencies, lost, send_errors


async def raw_kafka_phase(stack: Stack, args) -> list[float]:
    """One producer (the relay's settings) and one assigned consumer (the fan-out readers' fetch wait)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from shared.config import HearthSettings
    from shared.kafka import make_producer

    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    await admin.close()
    producer = make_producer(HearthSettings(kafka_bootstrap=stack.bootstrap))
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=args.fanout_wait_ms)
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    await producer.start()
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)

    async def consume():
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    t0 = sent.pop(record.value, None)
                    if t0 is not None:
                        latencies.append((now - t0) * 1000)

    reader = asyncio.create_task(consume())
    total = int(args.rate * args.raw_seconds)
    start_at = time.perf_counter()
    for n in range(total):
        delay = start_at + n / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        value = uuid.uuid4().hex.encode()
        sent[value] = time.perf_counter()
        await producer.send(topic, value=value, key=str(n % 64).encode())
    deadline = time.monotonic() + 10
    while sent and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await consumer.stop()
    await producer.stop()
    return latencies


async def memory_phase(stack: Stack, args) -> tuple[list[int], list[int], int]:
    people = [uuid.uuid4() for _ in range(args.idle)]
    await asyncio.sleep(3)
    before = stack.rss()
    clients = [Client(p, stack.urls[i % 2], stack.token(p), {}, []) for i, p in enumerate(people)]
    t = time.monotonic()
    await open_all(clients, concurrency=200)  # concurrent handshakes: 10,000 sockets open in seconds, not minutes
    say(f"{len(clients)} idle sockets open in {time.monotonic() - t:.1f}s; settling")
    await asyncio.sleep(10)
    after = stack.rss()
    open_count = sum(1 for c in clients if c.conn is not None and c.conn.state.name == "OPEN")
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return before, after, open_count


async def relay_stage(stack: Stack) -> list[float]:
    """Of the chat path: the message's transaction start -> the relay has published its event."""
    import asyncpg
    from shared.db import database_url
    dsn = database_url(stack.server_url, DB_PREFIX + "messaging").replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT extract(epoch FROM published_at - created_at) * 1000 AS ms FROM outbox "
                                "WHERE published_at IS NOT NULL AND convert_from(payload, 'UTF8') LIKE "
                                "'%hearth.message.sent%' AND convert_from(payload, 'UTF8') LIKE '%bench message%'")
    finally:
        await conn.close()
    return [float(r["ms"]) for r in rows]


async def main_async(stack: Stack, args) -> None:
    # Memory first, on fresh processes: afterwards the allocator would hand the idle sockets memory
    # that the latency phase's sockets freed, and the delta would read low.
    before, after, open_count = await memory_phase(stack, args)
    latencies, lost, send_errors = await latency_phase(stack, args)
    relay = await relay_stage(stack)
    raw = await raw_kafka_phase(stack, args)
    delta = sum(after) - sum(before)
    print()
    print(f"machine: {os.cpu_count()} cores shared by PostgreSQL, Tansu, both replicas and this client "
          f"(and by other people's work on this machine)")
    print(f"load: {args.sockets} sockets, {args.rate:g} msg/s for {args.seconds:g} s "
          f"(each message crosses replicas); raw probe {args.rate:g} msg/s for {args.raw_seconds:g} s; "
          f"fan-out fetch wait {args.fanout_wait_ms} ms (Tansu answers a waiting fetch when the wait ends)")
    print()
    print("| | samples | p50 | p90 | p99 | max (ms) |")
    print("|---|---|---|---|---|---|")
    print(row("sender socket -> recipient socket on the other replica", latencies))
    print(row(f"raw aiokafka produce -> consume, same broker ({args.fanout_wait_ms} ms fetch wait, as the fan-out)", raw))
    print(row("of the chat path: transaction start -> relay has published", relay))
    print()
    print(f"lost (no frame within {args.wait:g} s of the end): {lost}; send errors: {send_errors}")
    if raw and latencies:
        print(f"p99 ratio chat / raw broker: {percentile(latencies, 99) / percentile(raw, 99):.1f}x "
              f"(p50 ratio {percentile(latencies, 50) / percentile(raw, 50):.1f}x)")
    print(f"idle sockets: {open_count} open of {args.idle}; replica RSS before {[b // 2**20 for b in before]} MiB, "
          f"after {[a // 2**20 for a in after]} MiB; "
          f"RSS delta / sockets = {delta / max(open_count, 1) / 1024:.1f} KiB per idle socket")


def raise_fd_limit(sockets: int) -> None:
    """This client holds every socket; the replicas (its children) inherit the raised limit."""
    import resource
    needed = sockets + 1024  # the sockets, plus PostgreSQL, the broker and the HTTP set-up
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"bench: the file-descriptor limit is {hard}; {needed} are needed (raise it: ulimit -Hn {needed})")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else needed, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--raw-seconds", type=float, default=20)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--wait", type=float, default=15, help="seconds to wait for the last frames after the sends")
    parser.add_argument("--pool-size", type=int, default=10, help="each replica's database pool (+ as much overflow)")
    parser.add_argument("--fanout-wait-ms", type=int, default=10,
                        help="the replicas' fan-out fetch wait (Tansu holds a fetch this long; 20 = the dev stack's)")
    parser.add_argument("--no-durable", action="store_true", help="PostgreSQL without fsync (to tell disk waits apart)")
    parser.add_argument("--keep-temp", action="store_true")
    parser.add_argument("--py-spy", metavar="DIR", help="record each replica with py-spy during the latency phase")
    args = parser.parse_args()
    raise_fd_limit(max(args.idle, args.sockets))
    stack = Stack(args)
    try:
        started = time.monotonic()
        stack.start()
        # uvloop for the client too: it holds every socket on the same cores as what it measures.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main_async(stack, args))
        say(f"whole run {time.monotonic() - started:.0f}s")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
