import pytest

from services.analytics.config import Settings
from services.analytics.ingest.service import ingest
from services.analytics.main import create_app
from tests.service_fixtures import service_fixtures

settings, engine, sessionmaker, session, app, client = service_fixtures("analytics", Settings, create_app)


@pytest.fixture
def deliver(sessionmaker):
    """Ingest events the way the consumer does, each in its own transaction (so order and duplicates are real)."""

    async def deliver(*envelopes, batch: bool = False):
        groups = [envelopes] if batch else [[e] for e in envelopes]
        for group in groups:
            async with sessionmaker() as session:
                await ingest(session, group)
                await session.commit()

    return deliver
