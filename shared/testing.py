"""Test helpers every service's tests share: tokens, a savepoint session per test, an HTTP client."""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from uuid import UUID

import httpx
from fastapi import FastAPI, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.auth import SigningKey
from shared.db import get_session, unit_of_work
from shared.events import Envelope
from shared.outbox import outbox_table


class TestKeys:
    """A signing key for the test session: mints tokens every service under test accepts."""

    __test__ = False  # not a pytest class

    def __init__(self):
        self.pem = SigningKey.generate_pem()
        self.key = SigningKey(self.pem)
        self.jwks_json = json.dumps({"keys": [self.key.public_jwk()]})

    def token(self, user_id: UUID, *, roles: list[str] = ("member",), scopes: list[str] | None = None,
              ttl: timedelta = timedelta(minutes=15), key: SigningKey | None = None) -> str:
        return (key or self.key).sign(subject=user_id, roles=list(roles), scopes=scopes, ttl=ttl,
                                      issuer="hearth", audience="hearth")

    def headers(self, user_id: UUID, **kwargs) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, **kwargs)}"}


@asynccontextmanager
async def savepoint_sessionmaker(engine: AsyncEngine, *, service: str) -> AsyncIterator[async_sessionmaker]:
    """Sessions whose commits are savepoints inside one transaction that is rolled back afterwards."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield async_sessionmaker(bind=connection, expire_on_commit=False, info={"service": service},
                                     join_transaction_mode="create_savepoint")
        finally:
            await transaction.rollback()


def client_for(app: FastAPI, sessionmaker: async_sessionmaker, **kwargs) -> httpx.AsyncClient:
    """An HTTP client over the app in-process, its requests using the test's sessions."""

    async def session_override(request: Request) -> AsyncIterator[AsyncSession]:
        async with unit_of_work(sessionmaker) as session:
            request.state.unit_of_work = session
            yield session

    app.dependency_overrides[get_session] = session_override
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", **kwargs)


async def outbox_events(session: AsyncSession, *, type: str | None = None) -> list[Envelope]:
    """Events the code under test queued, oldest first."""
    rows = await session.execute(select(outbox_table.c.payload).order_by(outbox_table.c.id))
    events = [Envelope.from_bytes(r[0]) for r in rows]
    return [e for e in events if type is None or e.type == type]


@contextmanager
def throwaway_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder for test data (databases, logs) that is gone when the tests end.

    `HEARTH_KEEP_TEST_DATA=1` keeps it (its path is printed) to read logs after a failure.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if os.environ.get("HEARTH_KEEP_TEST_DATA"):
            print(f"kept test data in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)
