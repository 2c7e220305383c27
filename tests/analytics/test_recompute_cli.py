"""`python -m services.analytics.recompute` on a committed database: a progress bar, the same rollups."""

import asyncio
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from services.analytics.ingest.service import ingest
from shared.db import database_url, make_engine, make_sessionmaker
from shared.devstack.stack import create_databases, drop_databases
from shared.migrations import upgrade
from tests.analytics.scenario import company

PREFIX = "hearth_test_cli_"
ROLLUPS = ("person_day", "person_bits", "person_client_day", "post_day", "post_viewers", "post_responders",
           "comments", "search_day", "author_day", "content_day")


@pytest.fixture
async def committed(pg_server_url):
    name = PREFIX + "analytics"
    await drop_databases(pg_server_url, [name])
    await create_databases(pg_server_url, [name])
    url = database_url(pg_server_url, name)
    await asyncio.to_thread(upgrade, "analytics", url)
    engine = make_engine(url, pool_size=1)
    yield make_sessionmaker(engine, service="analytics")
    await engine.dispose()
    await drop_databases(pg_server_url, [name])


async def snapshot(sessionmaker) -> dict:
    async with sessionmaker() as session:
        out = {t: sorted(map(tuple, (await session.execute(text(f"SELECT * FROM {t}"))).all())) for t in ROLLUPS}
        out["posts"] = sorted(map(tuple, (await session.execute(text(
            "SELECT post_id, reach, first_response_at FROM posts"))).all()))
    return out


async def test_recompute_command_rebuilds_identical_rollups(committed, pg_server_url):
    async with committed() as session:
        for envelope in company().events:
            await ingest(session, [envelope])
        await session.commit()
    before = await snapshot(committed)
    async with committed() as session:
        for damage in ("DELETE FROM person_day", "DELETE FROM post_viewers", "UPDATE posts SET reach = 0",
                       "UPDATE author_day SET reach = 0, comments = 7", "DELETE FROM content_day"):
            await session.execute(text(damage))
        await session.commit()
    env = os.environ | {"HEARTH_DATABASE_URL": pg_server_url, "HEARTH_DATABASE_PREFIX": PREFIX}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "services.analytics.recompute",
                                                     "--from", "2026-10-01", "--to", "2026-11-20"],
                                   env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "recompute 2026-10-01..2026-11-20" in done.stderr and "100%" in done.stderr  # tqdm's bar
    assert done.stdout.strip().startswith("replayed ")
    assert await snapshot(committed) == before
    assert before["person_day"] and before["post_viewers"] and before["author_day"]


def test_recompute_refuses_an_empty_range():
    done = subprocess.run([sys.executable, "-m", "services.analytics.recompute", "--from", "2026-11-02",
                           "--to", "2026-11-01"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--to must be after --from" in done.stderr
