"""Chaos under steady load: real processes, a real broker (Tansu), a real PostgreSQL — then the ledger.

Every scenario writes ~15 posts/s with an @mention through posts' REST API while it breaks something,
then waits (bounded, polling) until every accepted post has been applied exactly once by every
consumer (see tests/e2e/chaos_support.py for the ledger) and checks that nothing was dead-lettered and
that /readyz reported the outage while it lasted. The stack is the suite's own (own PostgreSQL, broker,
ports), so the faults disturb no other test. Run with `make test-chaos` (HEARTH_CHAOS=1).
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import AIOKafkaProducer
from uuid6 import uuid7

from shared.devstack.ports import free_port
from shared.devstack.postgres import EmbeddedPostgres
from shared.events import Envelope
from shared.events.payloads import PostCreated
from shared.migrations import REPO_ROOT
from shared.testing import throwaway_dir
from tests.e2e.chaos_support import (
    ADMIN,
    CONSUMERS,
    PREFIX,
    ReadyzWatcher,
    Writer,
    chaos_stack_running,
    dead_lettered_metric,
    dead_letters,
    first_occurrences,
    login,
    outbox_order,
    read_keys_in_order,
    read_ledger,
    wait_for,
    wait_ledger_complete,
    writing,
)

pytestmark = pytest.mark.skipif(not os.environ.get("HEARTH_CHAOS"),
                                reason="the chaos suite runs with `make test-chaos` (HEARTH_CHAOS=1)")


@pytest.fixture(scope="session")
def chaos():
    with chaos_stack_running() as stack:
        yield stack


@pytest.fixture
async def client(chaos):
    async with httpx.AsyncClient(timeout=10) as c:
        yield c
    await chaos.ensure_running()  # order-independent: whatever a scenario killed comes back


async def assert_nothing_dead_lettered(chaos, client) -> None:
    """`.dlq` topics hold only the poison a scenario injected on purpose (none, in most)."""
    found = await dead_letters(chaos.broker.bootstrap)
    unexpected = {t: [r for r in records if r[0] not in chaos.poison] for t, records in found.items()}
    assert not any(unexpected.values()), unexpected
    urls = [p.url for p in chaos.processes if p.name != "posts" and p.process.poll() is None]
    assert await dead_lettered_metric(client, urls) <= len(chaos.poison) * len(CONSUMERS)


async def test_consumer_service_sigkilled_and_restarted_under_load_loses_and_doubles_nothing(chaos, client):
    notifications = chaos.service("notifications")
    async with writing(client, chaos) as writer:
        await writer.wait_accepted(20)
        notifications.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(notifications.process.wait, 10)
        await writer.wait_accepted(30)  # written while the consumer is dead
        notifications.start()
        await asyncio.to_thread(notifications.wait_healthy, 90)
        await writer.wait_accepted(20)
    ledger = await wait_ledger_complete(chaos, writer.accepted)
    print(f"\nconsumer SIGKILL: {ledger.summary()} statuses={dict(writer.statuses)}")
    assert ledger.accepted >= 70 and writer.count_of(500) == 0
    await assert_nothing_dead_lettered(chaos, client)


async def test_broker_killed_three_times_under_load_every_accepted_post_applied_once(chaos, client):
    watcher = ReadyzWatcher(client, chaos.url("notifications")).start()
    outages = []
    try:
        async with writing(client, chaos) as writer:
            await writer.wait_accepted(20)
            for _ in range(3):
                began = time.time()
                await chaos.kill_broker()
                await writer.wait_accepted(15)  # the outbox keeps accepting writes
                # /readyz reports the outage while it lasts (polled, bounded)
                await wait_for(lambda began=began: _const(watcher.unready(since=began)), timeout=30,
                               message="/readyz to answer 503 while the broker is down")
                republished = await chaos.start_broker_again()
                outages.append((began, time.time(), republished))
                await writer.wait_accepted(20)
    finally:
        await watcher.stop()
    ledger = await wait_ledger_complete(chaos, writer.accepted, timeout=120)
    print(f"\nbroker killed x3: {ledger.summary()} republished={[o[2] for o in outages]} "
          f"statuses={dict(writer.statuses)}")
    for began, ended, _ in outages:
        assert any(body.get("checks", {}).get("broker") is False for body in watcher.unready(began, ended))
    assert writer.count_of(500) == 0
    await assert_nothing_dead_lettered(chaos, client)


async def test_dead_letter_send_failing_while_the_broker_stalls_keeps_the_poison_and_the_consumer(chaos, client):
    """True poison (a post.created whose kind is longer than notifications' column: the handler fails
    the same way every time) is dead-lettered while the broker is frozen (SIGSTOP) for 15 s: the
    dead-letter send times out and is retried; the consumer survives, the poison lands in `.dlq`
    exactly once, and every accepted post is still applied once."""
    notifications = chaos.service("notifications")
    log_size = notifications.log_file.stat().st_size
    async with writing(client, chaos) as writer:
        await writer.wait_accepted(15)
        post_id = uuid7()
        poison = Envelope.wrap(PostCreated(post_id=post_id, author_id=uuid7(), kind="k" * 40, audience="company",
                                           excerpt="poison", created_at=datetime.now(UTC)),
                               source="chaos", subject=post_id)
        chaos.poison.add(str(poison.id))
        retried = await _consumer_metric(client, notifications.url, "retried")
        producer = AIOKafkaProducer(bootstrap_servers=chaos.broker.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("social.v1", value=poison.to_bytes(), key=str(post_id).encode())
        finally:
            await producer.stop()
        # The handler has failed once: the dead-letter send is at most ~1.5 s of retries away. Freeze the broker.
        await wait_for(lambda: _more(client, notifications.url, "retried", retried), timeout=30, interval=0.05,
                       message="the notifications handler to fail on the poison")
        os.kill(chaos.broker.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(15)  # the stall's duration, not an assertion
        finally:
            os.kill(chaos.broker.process.pid, signal.SIGCONT)
        await writer.wait_accepted(20)
    ledger = await wait_ledger_complete(chaos, writer.accepted, timeout=120)
    found = await dead_letters(chaos.broker.bootstrap)
    log = notifications.log_file.read_bytes()[log_size:]
    print(f"\ndead-letter send failing: {ledger.summary()}; social.v1.dlq={found['social.v1.dlq']}; "
          f"dead-letter send failures logged={log.count(b'dead-letter send failed')}")
    assert found["social.v1.dlq"] == [(str(poison.id), "notifications.social")]
    assert b"dead-letter send failed" in log  # the fault really happened
    assert notifications.process.poll() is None
    ready = await client.get(f"{notifications.url}/readyz")
    assert ready.status_code == 200 and all(ready.json()["background"].values()), ready.text
    await assert_nothing_dead_lettered(chaos, client)


async def _consumer_metric(client, url: str, name: str, job: str = "notifications.social") -> float:
    for line in (await client.get(f"{url}/metrics")).text.splitlines():
        if line.startswith(f"hearth_consumer_{name}{{") and f'job="{job}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _more(client, url: str, name: str, than: float) -> bool:
    return await _consumer_metric(client, url, name) > than


async def test_notifications_database_refusing_connections_for_10s_dead_letters_and_loses_nothing(chaos, client):
    watcher = ReadyzWatcher(client, chaos.url("notifications")).start()
    try:
        async with writing(client, chaos) as writer:
            await writer.wait_accepted(20)
            began = time.time()
            await chaos.refuse_connections("notifications")
            try:
                await asyncio.sleep(10)  # the fault's duration, not an assertion
            finally:
                await chaos.allow_connections("notifications")
            ended = time.time()
            await writer.wait_accepted(20)
    finally:
        await watcher.stop()
    ledger = await wait_ledger_complete(chaos, writer.accepted)
    print(f"\nnotifications database refused 10 s: {ledger.summary()} readyz={dict(watcher.statuses(began, ended))}")
    unready = watcher.unready(began, ended)
    assert unready and all(body["checks"]["database"] is False for body in unready)
    await assert_nothing_dead_lettered(chaos, client)


async def test_postgresql_restarted_under_load_answers_503_not_500_and_delivers_every_accepted_post(chaos, client):
    watcher = ReadyzWatcher(client, chaos.url("posts")).start()
    try:
        async with writing(client, chaos) as writer:
            await writer.wait_accepted(20)
            began = time.time()
            await chaos.stop_postgres()
            await wait_for(lambda: _const(sum(1 for t, s in writer.answers if t > began and s == 503) >= 5),
                           timeout=30, message="posts to refuse writes with 503 while PostgreSQL is down")
            await chaos.start_postgres()
            ended = time.time()
            await writer.wait_accepted(30, timeout=120)
    finally:
        await watcher.stop()
    ledger = await wait_ledger_complete(chaos, writer.accepted, timeout=120)
    during = [s for t, s in writer.answers if began <= t]
    print(f"\nPostgreSQL restarted: {ledger.summary()} statuses={dict(writer.statuses)}")
    assert writer.count_of(500) == 0, dict(writer.statuses)
    assert 503 in during
    assert watcher.unready(began, ended)
    await assert_nothing_dead_lettered(chaos, client)


async def test_relay_lease_holder_frozen_then_resumed_then_killed_delivery_moves_to_the_other_replica(chaos, client):
    original = chaos.service("posts")
    replica = chaos.replica("posts")
    replica.start()
    await asyncio.to_thread(replica.wait_healthy, 90)
    replicas = {original.process.pid: original, replica.process.pid: replica}
    [holder_pid] = await wait_for(lambda: _holders_among(chaos, replicas), timeout=30,
                                  message="one of the two posts replicas to hold the relay lease")
    holder = replicas[holder_pid]
    standby = next(p for pid, p in replicas.items() if pid != holder_pid)
    async with writing(client, chaos, edits=2) as writer:
        writer.url = standby.url  # the frozen replica cannot answer; clients reach the other one
        await writer.wait_accepted(15)
        before_freeze = set(writer.accepted)
        frozen_at = time.time()
        os.kill(holder_pid, signal.SIGSTOP)
        try:
            await wait_for(lambda: _holder_is(chaos, standby.process.pid), timeout=30,
                           message="the standby to take the relay lease from the frozen holder")
            takeover = time.time() - frozen_at
            await writer.wait_accepted(30)
            during_freeze = [p for p in writer.accepted if p not in before_freeze]
            ledger = await wait_ledger_complete(chaos, during_freeze)
        finally:
            os.kill(holder_pid, signal.SIGCONT)
        resumed = set(writer.accepted)
        await writer.wait_accepted(30)
        after_resume = [p for p in writer.accepted if p not in resumed]
        # The resumed old holder neither stalls delivery nor publishes out of order (checked below).
        await wait_ledger_complete(chaos, after_resume)
        holders_after_resume = await chaos.lease_holders("posts")
        holder.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(holder.process.wait, 10)
        killed = set(writer.accepted)
        await writer.wait_accepted(20)  # and delivery goes on once it is killed
        await wait_ledger_complete(chaos, [p for p in writer.accepted if p not in killed])
    worst = max(ledger.delays["notifications.social"].values())
    print(f"\nrelay holder frozen: lease taken over after {takeover:.2f} s; posts written during the freeze "
          f"delivered to notifications within {worst:.2f} s (worst); {ledger.summary()}")
    final = await wait_ledger_complete(chaos, writer.accepted)
    print(f"relay holder resumed then killed: {final.summary()}; {len(after_resume)} posts after the resume; "
          f"lease holder pid after the resume {holders_after_resume} (frozen one {holder_pid}, standby "
          f"{standby.process.pid}); edits accepted={writer.edits_accepted}")
    # Per key (post), consumers see events first in the order they were committed: no reordering.
    keys = set(writer.accepted)
    expected = await outbox_order(chaos, keys)
    seen = await read_keys_in_order(chaos.broker.bootstrap, "social.v1", keys)
    reordered = {k: (first_occurrences(seen.get(k, [])), ids) for k, ids in expected.items()
                 if first_occurrences(seen.get(k, [])) != ids}
    assert not reordered, list(reordered.items())[:3]
    assert sum(len(ids) for ids in expected.values()) >= len(keys) + writer.edits_accepted
    await assert_nothing_dead_lettered(chaos, client)


async def _holders_among(chaos, replicas) -> list[int] | None:
    holders = [pid for pid in await chaos.lease_holders("posts") if pid in replicas]
    return holders if len(holders) == 1 else None


async def _holder_is(chaos, pid: int) -> bool:
    return await chaos.lease_holders("posts") == [pid]


async def _const(value):
    return value


class Launcher:
    """`python -m shared.devstack run` (what `make run` runs) in a data folder of its own."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.ports = {s: free_port() for s in ("posts", "messaging", "notifications", "analytics")}
        self.env = {k: v for k, v in os.environ.items() if k not in ("HEARTH_DATABASE_URL", "HEARTH_KAFKA_BOOTSTRAP")} | {
            "HEARTH_DATA_DIR": str(data_dir), "HEARTH_DEMO_PEOPLE": "0", "HEARTH_DATABASE_PREFIX": PREFIX,
            "HEARTH_ADMIN_EMAIL": ADMIN["email"], "HEARTH_ADMIN_PASSWORD": ADMIN["password"], "HEARTH_ENV": "test",
            "HEARTH_LOG_LEVEL": "WARNING"} | {f"HEARTH_{s.upper()}_PORT": str(p) for s, p in self.ports.items()}
        self.output = data_dir / "launcher.out"
        self.process: subprocess.Popen | None = None
        self.posts_url = f"http://127.0.0.1:{self.ports['posts']}"

    def _spawn(self) -> None:
        with open(self.output, "ab") as out:
            # A terminal's Ctrl-C goes to its foreground process group: the launcher's own group here.
            self.process = subprocess.Popen([sys.executable, "-m", "shared.devstack", "run"], cwd=REPO_ROOT,
                                            env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    async def start(self) -> None:
        runs = self.output.read_bytes().count(b"Ctrl-C stops everything") if self.output.exists() else 0
        await asyncio.to_thread(self._spawn)

        async def started():
            if self.process.poll() is not None:
                raise AssertionError(f"the launcher exited with {self.process.returncode}; see {self.output}")
            return self.output.read_bytes().count(b"Ctrl-C stops everything") > runs

        await wait_for(started, timeout=180, message=f"the launcher to start everything (see {self.output})")

    def database(self, service: str):
        port = int((self.data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[3])
        return asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/{PREFIX}{service}")

    async def ctrl_c(self) -> tuple[float, list[int], int]:
        """SIGINT to the launcher's process group; (seconds until it exited, processes left, how many it had)."""
        everything = {p.pid for p in psutil.Process(self.process.pid).children(recursive=True)}
        everything.add(int((self.data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0]))
        signalled = time.time()
        os.killpg(self.process.pid, signal.SIGINT)
        await asyncio.to_thread(self.process.wait, 30)
        return time.time() - signalled, [pid for pid in everything if _alive(pid)], len(everything)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)


async def test_ctrl_c_on_the_launcher_under_load_delivers_everything_accepted_and_leaves_nothing_running():
    with throwaway_dir("hearth-chaos-launcher-") as folder:
        await _ctrl_c_scenario(Launcher(folder))


async def _ctrl_c_scenario(launcher) -> None:
    await launcher.start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            admin = await login(client, launcher.posts_url, ADMIN["email"], ADMIN["password"])
            response = await client.post(f"{launcher.posts_url}/api/v1/people", headers=admin, json={
                "email": "mentioned@chaos.local", "display_name": "Mentioned", "password": "chaos-password"})
            assert response.status_code == 201, response.text
            writer = Writer(client, launcher.posts_url, {"admin": admin, "mentioned": response.json()}).start()
            try:
                await writer.wait_accepted(40)
                signalled = time.time()
                gone_after, left, started = await launcher.ctrl_c()
            finally:
                await writer.stop()  # it posts until the launcher is gone: some posts are accepted while draining
        print(f"\nCtrl-C: launcher exited {launcher.process.returncode} after {gone_after:.2f} s; {started} processes "
              f"it had started, {len(left)} left; statuses={dict(writer.statuses)}")
        assert launcher.process.returncode == 0 and not left, left

        # The launcher stopped its PostgreSQL last: start that data folder's server to read the ledger.
        postgres = EmbeddedPostgres(launcher.data_dir / "pgdata")
        postgres.start()
        try:
            ledger = await read_ledger(launcher.database, writer.accepted)
            conn = await launcher.database("posts")
            try:
                event_of = {r["key"]: str(r["event_id"]) for r in await conn.fetch(
                    "SELECT key, event_id FROM outbox WHERE key = ANY($1::text[]) AND "
                    "convert_from(payload, 'UTF8')::jsonb ->> 'type' = 'hearth.post.created'", list(writer.accepted))}
            finally:
                await conn.close()
        finally:
            postgres.stop()
        before = [p for p, at in writer.accepted.items() if at < signalled]
        during = [p for p, at in writer.accepted.items() if at >= signalled]  # answered while draining
        not_applied = {c: set(ids) for c, ids in ledger.missing.items()}
        lost_before = {c: [p for p in before if event_of[p] in ids] for c, ids in not_applied.items()}
        last = max(writer.accepted.values()) - signalled
        print(f"Ctrl-C ledger: {ledger.summary()}; accepted before the signal {len(before)}, while draining "
              f"{len(during)} (the last {last:.2f} s after the signal); not applied when everything had stopped: of those accepted before the signal "
              f"{({c: len(v) for c, v in lost_before.items()})}")
        # Every accepted write is in the outbox, none applied twice. (Rows still unpublished — a posts
        # process that did not drain within the launcher's bound — are published by the next run.)
        assert len(before) >= 40 and not ledger.no_event and not any(ledger.doubled.values())

        # Consumers stop while posts' relay flushes into the memory-only broker, so what was published
        # last may not have been consumed when the broker stopped; the next `make run` publishes again
        # what the previous run's broker received, so nothing accepted is lost.
        await launcher.start()
        final = await wait_ledger_complete_with(launcher.database, writer.accepted)
        print(f"after the next run: {final.summary()}")
        assert final.unpublished == 0
        gone_after, left, _ = await launcher.ctrl_c()
        assert launcher.process.returncode == 0 and not left, left
    finally:
        launcher.kill()


async def wait_ledger_complete_with(connect, post_ids, timeout: float = 90.0):
    last = []

    async def complete():
        ledger = await read_ledger(connect, post_ids)
        last[:] = [ledger]
        return ledger if ledger.complete else None

    try:
        return await wait_for(complete, timeout=timeout, message="every accepted post applied once", interval=0.5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last ledger: {last[0].summary() if last else 'unreadable'}") from None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
