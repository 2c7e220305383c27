"""Chaos over minutes: the chaos suite's ledger under steady load while faults keep coming.

    .venv/bin/python bench/chaos.py [--minutes 5] [--rate 15] [--every 20]

Starts its own stack (embedded PostgreSQL, Tansu, posts ×2 replicas, notifications, analytics; relay
lease 2 s), posts `--rate` posts/s with an @mention through posts' REST API, and every `--every`
seconds injects the next fault of the cycle: broker SIGKILLed and restarted (republished as the
launcher does), notifications SIGKILLed and restarted, the notifications database refusing
connections for 10 s, PostgreSQL restarted, the relay-lease holder frozen (SIGSTOP) 10 s then
resumed, analytics SIGKILLed and restarted, the broker frozen 10 s. Then it stops writing, waits for the
backlog and prints the ledger: writes accepted, effects missing, effects doubled, worst delivery
delay (outbox row created → consumer's processed_events row), from the databases.
"""

import argparse
import asyncio
import os
import signal
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

warnings.filterwarnings("ignore", module="platformdirs")

import httpx

from tests.e2e.chaos_support import (
    ChaosStack,
    Writer,
    chaos_stack_running,
    dead_letters,
    read_ledger,
    wait_for,
)


def say(message: str) -> None:
    print(f"chaos: {message}", flush=True)


async def restart(process) -> None:
    process.process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(process.process.wait, 10)
    process.start()
    await asyncio.to_thread(process.wait_healthy, 120)


class Faults:
    def __init__(self, stack: ChaosStack, writer: Writer, replica):
        self.stack, self.writer, self.replica = stack, writer, replica
        self.notes: list[str] = []
        self.takeovers: list[float] = []

    async def broker_killed(self):
        await self.stack.kill_broker()
        await asyncio.sleep(3)
        republished = await self.stack.start_broker_again()
        return f"{republished} rows republished"

    async def notifications_killed(self):
        await restart(self.stack.service("notifications"))

    async def analytics_killed(self):
        await restart(self.stack.service("analytics"))

    async def notifications_database_refused(self):
        await self.stack.refuse_connections("notifications")
        try:
            await asyncio.sleep(10)
        finally:
            await self.stack.allow_connections("notifications")

    async def postgresql_restarted(self):
        await self.stack.stop_postgres()
        await asyncio.sleep(3)
        await self.stack.start_postgres()

    async def relay_holder_frozen(self):
        replicas = {p.process.pid: p for p in (self.stack.service("posts"), self.replica)}
        holders = [pid for pid in await self.stack.lease_holders("posts") if pid in replicas]
        if len(holders) != 1:
            return "no single lease holder; skipped"
        holder = holders[0]
        standby = next(p for pid, p in replicas.items() if pid != holder)
        self.writer.url = standby.url
        frozen_at = time.monotonic()
        os.kill(holder, signal.SIGSTOP)
        try:
            await wait_for(lambda: _holds(self.stack, standby.process.pid), timeout=60, message="takeover")
            self.takeovers.append(time.monotonic() - frozen_at)
            await asyncio.sleep(max(0.0, 10 - (time.monotonic() - frozen_at)))
        finally:
            os.kill(holder, signal.SIGCONT)
        return f"lease taken over after {self.takeovers[-1]:.2f} s"

    async def broker_frozen(self):
        os.kill(self.stack.broker.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(10)
        finally:
            os.kill(self.stack.broker.process.pid, signal.SIGCONT)

    def cycle(self):
        return [self.broker_killed, self.notifications_killed, self.notifications_database_refused,
                self.postgresql_restarted, self.relay_holder_frozen, self.analytics_killed, self.broker_frozen]


async def _holds(stack: ChaosStack, pid: int) -> bool:
    return await stack.lease_holders("posts") == [pid]


async def run(stack: ChaosStack, args) -> int:
    replica = stack.replica("posts")
    replica.start()
    await asyncio.to_thread(replica.wait_healthy, 120)
    say(f"stack up in {stack.workdir}; writing {args.rate} posts/s for {args.minutes} min, a fault every "
        f"{args.every} s")
    async with httpx.AsyncClient(timeout=10) as client:
        writer = Writer(client, stack.url("posts"), await stack.people(client), rate=args.rate).start()
        faults = Faults(stack, writer, replica)
        began = time.monotonic()
        done = Counter()
        try:
            for fault in _forever(faults.cycle()):
                await asyncio.sleep(args.every)
                if time.monotonic() - began > args.minutes * 60:
                    break
                started = time.monotonic()
                note = await fault()
                writer.url = stack.url("posts")
                done[fault.__name__] += 1
                say(f"{fault.__name__.replace('_', ' ')} ({time.monotonic() - started:.1f} s){': ' + note if note else ''}"
                    f" — accepted so far {len(writer.accepted)}")
        finally:
            await writer.stop()
        stopped = time.monotonic()
        say(f"writing stopped after {stopped - began:.0f} s; waiting for the backlog (at most {args.drain} s)")
        ledger = None
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline:
            try:
                ledger = await read_ledger(stack.connect, writer.accepted)
            except Exception as exc:  # noqa: BLE001 - a database still coming back
                say(f"ledger unreadable yet: {exc!r}")
                await asyncio.sleep(1)
                continue
            if ledger.complete:
                break
            await asyncio.sleep(1)
        drained = time.monotonic() - stopped
        dlq = await dead_letters(stack.broker.bootstrap)
    print()
    print(f"faults injected:          {dict(done)}")
    print(f"writes attempted:         {sum(1 for _ in writer.answers)}  answers {dict(writer.statuses)}")
    print(f"writes accepted (201):    {len(writer.accepted)}")
    print(f"effects missing:          {ledger.missing_count}  ({ {c: len(v) for c, v in ledger.missing.items()} }, "
          f"no outbox row {len(ledger.no_event)}, effect rows absent {ledger.effects_missing})")
    print(f"effects doubled:          {ledger.doubled_count}")
    print("worst delivery delay:     " + ", ".join(f"{c} {v:.2f} s" for c, v in ledger.worst_delay.items()))
    for q in (0.5, 0.99):
        at = {c: sorted(d.values())[max(0, int(len(d) * q) - 1)] if d else 0 for c, d in ledger.delays.items()}
        print(f"p{int(q * 100)} delivery delay:".ljust(26) + ", ".join(f"{c} {v:.2f} s" for c, v in at.items()))
    print(f"relay lease takeovers:    {[round(t, 2) for t in faults.takeovers]} s")
    print(f"backlog drained in:       {drained:.1f} s after writing stopped")
    print(f"dead letters:             {sum(len(v) for v in dlq.values())}")
    return 0 if ledger.complete and not any(dlq.values()) else 1


def _forever(items):
    while True:
        yield from items


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="how long to write (default 5)")
    p.add_argument("--rate", type=float, default=15.0, help="posts per second (default 15)")
    p.add_argument("--every", type=float, default=20.0, help="seconds between faults (default 20)")
    p.add_argument("--drain", type=float, default=300.0, help="longest wait for the backlog, seconds (default 300)")
    args = p.parse_args(argv)
    with chaos_stack_running() as stack:
        return asyncio.run(run(stack, args))


if __name__ == "__main__":
    sys.exit(main())
