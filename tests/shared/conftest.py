import asyncio

import pytest
from sqlalchemy import text

from shared.config import HearthSettings
from shared.db import make_engine, make_sessionmaker
from shared.devstack.broker import TansuBroker
from shared.devstack.stack import database_url
from shared.kafka import ensure_topics
from shared.outbox import infra_metadata


@pytest.fixture(scope="session")
def broker():
    broker = TansuBroker()
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
async def scratch_engine(pg_server_url, scratch_database):
    engine = make_engine(database_url(pg_server_url, scratch_database), pool_size=2)
    async with engine.begin() as conn:
        await conn.run_sync(infra_metadata.create_all)
        # A deliberately non-idempotent effect, so dedupe is what keeps it exactly-once.
        await conn.execute(text("CREATE TABLE IF NOT EXISTS effects (id serial PRIMARY KEY, event_id uuid NOT NULL)"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def scratch(scratch_engine):
    """A sessionmaker on the scratch database, emptied before each test (these tests really commit)."""
    async with scratch_engine.begin() as conn:
        await conn.execute(text("TRUNCATE outbox, processed_events, effects"))
    return make_sessionmaker(scratch_engine, service="scratch")


@pytest.fixture
def settings_for(broker, pg_server_url, scratch_database):
    """Settings pointing at the test broker with topics unique to one test."""

    def make(tag: str) -> HearthSettings:
        return HearthSettings(kafka_bootstrap=broker.bootstrap, topic_social=f"social.{tag}",
                              topic_people=f"people.{tag}", consumer_max_attempts=3)

    return make


async def create_topics(settings: HearthSettings) -> None:
    await asyncio.wait_for(ensure_topics(settings.kafka_bootstrap, [settings.topic_social, settings.topic_people],
                                         partitions=2), timeout=20)
