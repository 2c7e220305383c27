"""The four services as real processes, a real broker and real databases: the whole event path."""

import asyncio
import time

import httpx
import pytest

from shared.config import HearthSettings
from shared.devstack.broker import TansuBroker
from shared.devstack.ports import free_port
from shared.devstack.stack import (SERVICES, drop_databases, prepare_databases, prepare_topics, republish_since,
                                   service_processes, signing_key_file, stop_all)
from shared.kafka import ensure_topics
from shared.testing import throwaway_dir

E2E_PREFIX = "hearth_e2e_"
ADMIN = {"email": "admin@e2e.local", "password": "e2e-admin-password"}


class Stack:
    def __init__(self, server_url: str, broker: TansuBroker, processes):
        self.server_url, self.broker, self.processes = server_url, broker, processes
        self.urls = {p.name: p.url for p in processes}

    async def restart_broker(self) -> None:
        """A fresh broker on the same port, as the launcher does it: topics created again and what the
        previous (memory-only) broker held published again."""
        previous_start = self.broker.started_at
        self.broker.start()
        await ensure_topics(self.broker.bootstrap, HearthSettings().topics)
        await republish_since(self.server_url, E2E_PREFIX, previous_start)


@pytest.fixture(scope="session")
def stack(pg_server_url):
    asyncio.run(drop_databases(pg_server_url, [E2E_PREFIX + s for s in SERVICES]))
    prepare_databases(pg_server_url, E2E_PREFIX)
    with throwaway_dir("hearth-e2e-") as workdir:
        broker = TansuBroker(log_file=workdir / "broker.log")
        broker.start()
        prepare_topics(broker.bootstrap)
        processes = service_processes(
            server_url=pg_server_url, prefix=E2E_PREFIX, bootstrap=broker.bootstrap,
            key_file=signing_key_file(workdir), ports={s: free_port() for s in SERVICES}, log_dir=workdir,
            extra_env={"HEARTH_ENV": "test", "HEARTH_ADMIN_EMAIL": ADMIN["email"],
                       "HEARTH_ADMIN_PASSWORD": ADMIN["password"], "HEARTH_DATABASE_POOL_SIZE": "3"})
        try:
            for p in processes:
                p.start()
            for p in processes:
                p.wait_healthy(timeout=60)
            yield Stack(pg_server_url, broker, processes)
        finally:
            stop_all(processes)
            broker.stop()


@pytest.fixture
async def http(stack):
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def eventually(fetch, predicate, *, timeout: float = 30.0, message: str):
    """Poll `fetch` until `predicate(result)` holds; the bound turns a lost event into a failure."""
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = await fetch()
        if predicate(result):
            return result
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {message}; last result: {result}")
