"""Start the whole stack on one machine: databases, migrations, broker, topics and the four services."""

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx

from shared.auth import SigningKey
from shared.config import HearthSettings
from shared.db import database_url
from shared.kafka import ensure_topics
from shared.migrations import REPO_ROOT, upgrade

SERVICES = ("posts", "messaging", "notifications", "analytics")
DEFAULT_PORTS = {"posts": 8001, "messaging": 8002, "notifications": 8003, "analytics": 8004}


async def create_databases(server_url: str, names: list[str]) -> None:
    """Create each database that does not exist yet (one per service)."""
    conn = await asyncpg.connect(server_url)
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_databases(server_url: str, names: list[str]) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def prepare_databases(server_url: str, prefix: str) -> None:
    """Create each service's database and migrate it to head."""
    asyncio.run(create_databases(server_url, [prefix + s for s in SERVICES]))
    for service in SERVICES:
        upgrade(service, database_url(server_url, prefix + service))


def prepare_topics(bootstrap: str) -> None:
    asyncio.run(ensure_topics(bootstrap, HearthSettings().topics))


async def republish_since(server_url: str, prefix: str, since: datetime, services=SERVICES) -> int:
    """Mark rows published since `since` pending again in every service's outbox; the relays send them.

    The development broker keeps messages in memory only: when it is restarted, whatever was
    published into the previous one is gone, consumers' offsets included. Publishing those rows again
    loses nothing (consumers dedupe by event id) and keeps per-key order (the relay sends in id order).
    """
    total = 0
    for service in services:
        conn = await asyncpg.connect(database_url(server_url, prefix + service).replace("+asyncpg", ""))
        try:
            status = await conn.execute("UPDATE outbox SET published_at = NULL WHERE published_at >= $1", since)
            total += int(status.split()[-1])
            await conn.execute("NOTIFY hearth_outbox")
        finally:
            await conn.close()
    return total


def signing_key_file(data_dir: Path) -> Path:
    """The dev token-signing key, kept with the data so tokens survive a restart."""
    path = data_dir / "jwt-signing.pem"
    if not path.exists():
        path.write_bytes(SigningKey.generate_pem())
        path.chmod(0o600)
    return path


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_file: Path | None = None
    process: subprocess.Popen | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = open(self.log_file, "ab") if self.log_file else None
        # --no-proxy-headers: which forwarded addresses to believe is HEARTH_TRUSTED_PROXIES' call alone.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", f"services.{self.name}.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-access-log", "--log-level", "warning", "--no-proxy-headers"],
            cwd=REPO_ROOT, env=os.environ | self.env, stdout=out, stderr=subprocess.STDOUT if out else None,
            start_new_session=True)  # stopped by the launcher, in order, not by the terminal's Ctrl-C

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_file or 'output'}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not become healthy on {self.url}")

    def stop(self, timeout: float = 8.0) -> None:
        self.terminate()
        self.wait_stopped(timeout)

    def terminate(self) -> None:
        """Ask uvicorn to drain: finish requests, then the lifespan flushes the relay and commits offsets."""
        if self.process and self.process.poll() is None:
            self.process.terminate()

    def wait_stopped(self, timeout: float = 8.0) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def stop_all(processes: list[ServiceProcess], timeout: float = 8.0) -> None:
    """Stop services together (each drains in parallel), bounded by `timeout` overall."""
    for p in processes:
        p.terminate()
    deadline = time.monotonic() + timeout
    for p in processes:
        p.wait_stopped(max(0.1, deadline - time.monotonic()))


def service_processes(*, server_url: str, prefix: str, bootstrap: str, key_file: Path, ports: dict[str, int],
                      extra_env: dict[str, str] | None = None, log_dir: Path | None = None) -> list[ServiceProcess]:
    common = {"HEARTH_DATABASE_URL": server_url, "HEARTH_DATABASE_PREFIX": prefix, "HEARTH_KAFKA_BOOTSTRAP": bootstrap,
              "HEARTH_JWT_PRIVATE_KEY_FILE": str(key_file), "HEARTH_KAFKA_FETCH_MAX_WAIT_MS": "20",
              # Tansu answers a waiting fetch only when its wait ends: the chat fan-out's wait is its latency
              # floor, the messaging directory's only an idle poll (the same settings bench/messaging.py measures)
              "HEARTH_MESSAGING_FANOUT_FETCH_MAX_WAIT_MS": "10", "HEARTH_MESSAGING_DIRECTORY_FETCH_MAX_WAIT_MS": "100",
              "HEARTH_JWKS_URL": f"http://127.0.0.1:{ports['posts']}/.well-known/jwks.json"} | (extra_env or {})
    return [ServiceProcess(name, ports[name], common, log_file=(log_dir / f"{name}.log") if log_dir else None)
            for name in SERVICES]
