"""Engine, session dependency and the table base every service builds its models on."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import registry

# Explicit constraint names so Alembic migrations can drop and rename them predictably.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_registry() -> registry:
    """A registry of its own per service, so one process (tests) can load every service's models."""
    return registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def database_url(server_url: str, name: str) -> str:
    """The asyncpg URL of database `name` on the server `server_url` points at."""
    return make_url(server_url).set(drivername="postgresql+asyncpg", database=name).render_as_string(False)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine, *, service: str) -> async_sessionmaker[AsyncSession]:
    # `service` rides in session.info so add_event can name the event's source without being told.
    return async_sessionmaker(engine, expire_on_commit=False, info={"service": service})


@asynccontextmanager
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: one session, committed once when the route returns.

    Service functions never commit: their rows and outbox events land together here, or not at all
    when the route raises (the session closes and rolls back).
    """
    async with sessionmaker() as session:
        yield session
        await session.commit()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session (see `unit_of_work`)."""
    async with unit_of_work(request.app.state.sessionmaker) as session:
        request.state.unit_of_work = session  # for what runs around the route (shared.idempotency)
        yield session


# scope="function": the commit runs before the response is sent, so a failed commit is the request's
# error (503/500), never a 201 for something that was not saved.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
