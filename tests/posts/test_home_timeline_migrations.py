"""The home timeline migrations (0018, 0021, 0022) go down and up again on a database of their own."""

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.devstack.stack import create_databases, database_url, drop_databases
from shared.migrations import alembic_config, upgrade
from tests.conftest import TEST_PREFIX

NAME = TEST_PREFIX + "posts_timeline_migrations"


async def home_triggers(url) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as c:
            return set((await c.execute(text(
                "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'hearth_home_%' AND NOT tgisinternal"))).scalars())
    finally:
        await engine.dispose()


def test_the_timeline_migrations_downgrade_and_upgrade(pg_server_url):
    from alembic import command

    asyncio.run(drop_databases(pg_server_url, [NAME]))
    asyncio.run(create_databases(pg_server_url, [NAME]))
    url = database_url(pg_server_url, NAME)
    try:
        upgrade("posts", url)
        at_head = asyncio.run(home_triggers(url))
        assert {"hearth_home_post_added", "hearth_home_post_lock", "hearth_home_follow_lock"} <= at_head
        command.downgrade(alembic_config("posts", url), "0021_home_fanout_per_statement")
        assert not any(t.endswith("_lock") for t in asyncio.run(home_triggers(url)))
        command.downgrade(alembic_config("posts", url), "0017_search_tags_pk_name")
        assert asyncio.run(home_triggers(url)) == set()
        upgrade("posts", url)
        assert asyncio.run(home_triggers(url)) == at_head
    finally:
        asyncio.run(drop_databases(pg_server_url, [NAME]))
