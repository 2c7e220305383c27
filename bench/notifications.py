"""Must-read announcement fan-out: one post to an "All company" of 10,000 people, 1,000 notification sockets open.

    .venv/bin/python bench/notifications.py [--people 10000] [--sockets 1000] [--runs 3]

Starts its own stack (embedded PostgreSQL with durable settings, Tansu, the four services, as
`bench/event_path.py` does). The 10,000 people are written straight into the notifications service's
people read model (what people.v1 would have built; creating them through posts takes minutes and is
not what is measured), and their access tokens are signed with the stack's own key. The admin then
publishes a must-read announcement to the whole company through `POST /api/v1/posts`.

Measured from the moment the POST is sent (the post's commit happens inside that request, so this is
an upper bound of commit -> ...):
- to the announcement's notification frame on each of the 1,000 sockets (p50 / p99 / max across sockets);
- to all 10,000 inbox rows existing (polled every 5 ms in the notifications database).
The path: posts commit + outbox -> relay -> social.v1 -> notifications consumer: one transaction with
INSERT ... SELECT of the rows, the frames, 10 delivery events -> relay -> notifications.v1 -> fan-out
reader -> each socket reads its frame from the database. Everything (client with 1,000 sockets
included) shares the machine's cores.
"""

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from event_path import DB_PREFIX, percentile, say, start_own_stack  # noqa: E402  (its stack and statistics)

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import websockets  # noqa: E402


def summary(values_ms: list[float]) -> str:
    return (f"p50 {percentile(values_ms, 50):8.1f}  p90 {percentile(values_ms, 90):8.1f}  "
            f"p99 {percentile(values_ms, 99):8.1f}  max {max(values_ms):8.1f} ms  (n={len(values_ms)})")


async def seed_people(dsn: str, count: int) -> list[uuid.UUID]:
    from uuid6 import uuid7
    people = [uuid7() for _ in range(count)]
    now = datetime.now(timezone.utc)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "directory_people",
            records=[(p, f"bench{i}@corp.local", f"Bench {i}", False, False, False, True, ["member"], now)
                     for i, p in enumerate(people)],
            columns=["id", "email", "display_name", "leader", "official", "protected", "active", "roles",
                     "updated_at"])
    finally:
        await conn.close()
    return people


class Listener:
    def __init__(self, url: str, token: str):
        self.url, self.token = url, token
        self.arrived: dict[str, float] = {}  # post id -> monotonic time of its notification frame
        self.connection = None

    async def open(self) -> None:
        self.connection = await websockets.connect(self.url, max_queue=None)
        await self.connection.send(json.dumps({"type": "hello", "token": self.token}))
        welcome = json.loads(await self.connection.recv())
        assert welcome["type"] == "welcome", welcome

    async def keepalive(self) -> None:
        while True:  # the server closes sockets that say nothing for 60 s
            await asyncio.sleep(20)
            await self.connection.send('{"type": "ping"}')

    async def listen(self) -> None:
        asyncio.get_running_loop().create_task(self.keepalive())
        async for raw in self.connection:
            frame = json.loads(raw)
            if frame["type"] == "notification" and frame["data"]["kind"] == "announcement":
                self.arrived.setdefault(frame["data"]["post_id"], time.monotonic())


async def wait_rows(dsn: str, post_id: str, expected: int, timeout: float = 120.0) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = await conn.fetchval("SELECT count(*) FROM notifications WHERE post_id = $1", uuid.UUID(post_id))
            if n >= expected:
                return time.monotonic()
            await asyncio.sleep(0.005)
        raise TimeoutError(f"only {n} of {expected} inbox rows after {timeout}s")
    finally:
        await conn.close()


async def stages(target, dsn: str, post_id: str, sent_wall: float) -> dict[str, float]:
    """Where the time went, from the timestamps the databases keep (same host clock as this client)."""
    from shared.db import database_url
    posts_dsn = database_url(target.server_url, DB_PREFIX + "posts").replace("postgresql+asyncpg://", "postgresql://")
    out = {}
    conn = await asyncpg.connect(posts_dsn)
    try:
        row = await conn.fetchrow("SELECT min(created_at) AS c, max(published_at) AS p FROM outbox WHERE key = $1",
                                  post_id)
        out["posts tx start"], out["posts published"] = row["c"].timestamp(), row["p"].timestamp()
    finally:
        await conn.close()
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT min(created_at) AS first, max(created_at) AS last FROM notifications "
                                  "WHERE post_id = $1", uuid.UUID(post_id))
        out["notifications tx start"] = (await conn.fetchval(
            "SELECT min(created_at) FROM outbox WHERE key = $1", post_id)).timestamp()
        out["first row"], out["last row"] = row["first"].timestamp(), row["last"].timestamp()
        out["delivery events published"] = (await conn.fetchval(
            "SELECT max(published_at) FROM outbox WHERE key = $1", post_id)).timestamp()
    finally:
        await conn.close()
    return {k: (v - sent_wall) * 1000 for k, v in out.items()}


async def run(target, args) -> None:
    from shared.auth import SigningKey
    from shared.db import database_url
    dsn = database_url(target.server_url, DB_PREFIX + "notifications").replace("postgresql+asyncpg://",
                                                                                "postgresql://")
    people = await seed_people(dsn, args.people)
    say(f"{args.people} people in the notifications read model")
    key = SigningKey((target.log_dir.parent / "jwt-signing.pem").read_bytes())  # the stack's own signing key
    ws_url = target.notifications_url.replace("http://", "ws://") + "/api/v1/notifications/ws"
    listeners = [Listener(ws_url, key.sign(subject=p, roles=["member"], scopes=None, ttl=timedelta(hours=1),
                                           issuer="hearth", audience="hearth")) for p in people[:args.sockets]]
    started = time.monotonic()
    for i in range(0, len(listeners), 50):
        await asyncio.gather(*(l.open() for l in listeners[i:i + 50]))
    say(f"{len(listeners)} sockets open after {time.monotonic() - started:.1f}s")
    tasks = [asyncio.create_task(l.listen()) for l in listeners]
    async with httpx.AsyncClient(timeout=30) as http:
        login = await http.post(f"{target.posts_url}/auth/login",
                                json={"email": target.admin_email, "password": target.admin_password})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}", "X-Hearth-Client": "web"}
        await asyncio.sleep(1.0)  # sockets settled (badge frames sent)
        frames_ms, rows_ms, post_ms = [], [], []
        for n in range(args.runs):
            sent, sent_wall = time.monotonic(), time.time()
            response = await http.post(f"{target.posts_url}/api/v1/posts", headers=headers, json={
                "kind": "announcement", "body": f"Must read #{n}: the new travel policy", "audience": "company",
                "must_read": True})
            answered = time.monotonic()
            assert response.status_code == 201, response.text
            post_id = response.json()["id"]
            rows_at = await wait_rows(dsn, post_id, args.people)
            deadline = time.monotonic() + 60
            while sum(post_id in l.arrived for l in listeners) < len(listeners) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            arrived = [l.arrived[post_id] for l in listeners if post_id in l.arrived]
            if len(arrived) < len(listeners):
                say(f"run {n}: only {len(arrived)} of {len(listeners)} sockets got the frame within 60 s")
            run_frames = [(t - sent) * 1000 for t in arrived]
            frames_ms += run_frames
            rows_ms.append((rows_at - sent) * 1000)
            post_ms.append((answered - sent) * 1000)
            say(f"run {n}: POST {post_ms[-1]:.0f} ms; all {args.people} inbox rows {rows_ms[-1]:.0f} ms; "
                f"socket frames {summary(run_frames)}")
            say(f"run {n} stages (ms after the POST was sent, database clocks): "
                + ", ".join(f"{k} {v:.0f}" for k, v in (await stages(target, dsn, post_id, sent_wall)).items()))
            await asyncio.sleep(2.0)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*(l.connection.close() for l in listeners), return_exceptions=True)
    print()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores shared by PostgreSQL, Tansu, four services "
          f"and this client ({args.sockets} sockets); Python {platform.python_version()}")
    print(f"announcement to {args.people} people, {args.sockets} sockets, {args.runs} runs")
    print(f"POST round trip (includes the commit):   {summary(post_ms)}")
    print(f"POST sent -> socket frame (all sockets): {summary(frames_ms)}")
    print(f"POST sent -> all inbox rows:             {summary(rows_ms)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--sockets", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep-temp", action="store_true")
    args = parser.parse_args()
    with ExitStack() as stack:
        target = start_own_stack(stack, args)
        asyncio.run(run(target, args))


if __name__ == "__main__":
    main()
