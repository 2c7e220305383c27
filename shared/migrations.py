"""Alembic glue shared by every service's migrations/env.py, and a helper to upgrade from code."""

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import create_async_engine

from shared.outbox import infra_metadata

# Modules that add their own infra tables (sessions, idempotency, rate limits) to infra_metadata.
import shared.auth, shared.idempotency, shared.ratelimit  # noqa: E401, F401, I001

REPO_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(service: str, database_url: str | None = None) -> Config:
    config = Config(str(REPO_ROOT / "services" / service / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "services" / service / "migrations"))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(service: str, database_url: str, revision: str = "heads") -> None:
    """Migrate one service's database (blocking; run it in a thread from async code)."""
    command.upgrade(alembic_config(service, database_url), revision)


def run_env(metadatas: list[MetaData], default_url: str) -> None:
    """Body of a service's env.py: online and async, over the service's tables plus the infra tables."""
    url = context.config.attributes.get("database_url") or default_url
    target = [*metadatas, infra_metadata]

    def do_run(connection):
        context.configure(connection=connection, target_metadata=target, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async():
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())
