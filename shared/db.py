"""Engine, session dependency and the table base every service builds its models on."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import MetaData, event
from sqlalchemy.exc import DisconnectionError
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


# A pooled connection idle longer than this is pinged before use (see make_engine).
PING_AFTER_IDLE_SECONDS = 2.0


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None,
                ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> AsyncEngine:
    """An engine whose pool pings a connection before use only when it sat idle for `ping_after_idle` s.

    SQLAlchemy's `pool_pre_ping` pings on every checkout, and on asyncpg a ping is three round trips
    (BEGIN, ';', ROLLBACK): under load that was the largest part of a short request's database work. A
    connection that waited in the pool (PostgreSQL restarted, an idle timeout closed it) is still checked
    and replaced before anyone uses it. One that dies between two busy checkouts fails its statement
    instead: SQLAlchemy then invalidates the pool's connections, and the request answers 503 (retry)."""
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size if max_overflow is None else max_overflow)
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _returned(dbapi_connection, record) -> None:
        record.info["hearth_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy) -> None:
        idle_since = record.info.get("hearth_idle_since")
        if idle_since is None or time.monotonic() - idle_since < ping_after_idle:
            return  # new, or back in the pool a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool discards this connection and checks out another
            raise DisconnectionError(f"pooled connection failed its ping: {exc!r}") from exc

    return engine


@lru_cache(maxsize=64)
def compiled_sql(statement, dialect) -> tuple[str, tuple[str, ...], dict]:
    """A statement built once, compiled once for `dialect`: its SQL, the names of its parameters in the order
    the SQL numbers them, and the values of the literals it binds. For the hottest statements, run as driver
    SQL: SQLAlchemy's compiled cache hashes the statement's whole cache key (a tuple as large as the
    statement) on every execution. Only for statements whose values the dialect binds as they are."""
    compiled = statement.compile(dialect=dialect)
    if compiled._bind_processors or compiled.literal_execute_params:
        raise TypeError("this statement binds values the dialect processes: execute it compiled")
    return compiled.string, tuple(compiled.positiontup), compiled.params


def driver_args(compiled: tuple[str, tuple[str, ...], dict], params: dict) -> tuple:
    """The positional values of a `compiled_sql` statement: `params` by name, else the statement's literals."""
    _, names, constants = compiled
    return tuple(params[name] if name in params else constants[name] for name in names)


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


def read_only(endpoint):
    """Marks a GET route that only reads: its session runs each statement on its own (autocommit), which
    spares the BEGIN and COMMIT round trips of a transaction that has nothing to commit. Its statements
    may then see different snapshots, and its session is closed, not committed (nothing added to it is
    ever flushed): mark only routes that write nothing and whose answer does not need one snapshot."""
    endpoint.hearth_read_only = True
    return endpoint


def read_sessionmaker(engine: AsyncEngine, *, service: str) -> async_sessionmaker[AsyncSession]:
    """Sessions for `read_only` routes: no transaction (the pool restores the isolation level on return)."""
    return make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), service=service)


def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    state = request.app.state
    route = request.scope.get("route")
    if (request.method in ("GET", "HEAD") and getattr(getattr(route, "endpoint", None), "hearth_read_only", False)
            and getattr(state, "read_sessionmaker", None) is not None):
        return state.read_sessionmaker
    return state.sessionmaker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session (see `unit_of_work`; `read_only` routes: without a transaction, nothing to commit)."""
    maker = _sessionmaker(request)
    if maker is not request.app.state.sessionmaker:
        async with maker() as session:
            request.state.unit_of_work = session
            yield session
        return
    async with unit_of_work(maker) as session:
        request.state.unit_of_work = session  # for what runs around the route (shared.idempotency)
        yield session


# scope="function": the commit runs before the response is sent, so a failed commit is the request's
# error (503/500), never a 201 for something that was not saved.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
