"""Fixture builders shared by each service's conftest: settings, engine, savepoint sessions, client."""

import pytest

from shared.db import make_engine
from shared.testing import client_for, savepoint_sessionmaker

from tests.conftest import TEST_PREFIX


def service_fixtures(service: str, settings_cls, create_app, **settings_overrides):
    """Define `settings`, `engine`, `sessionmaker`, `session`, `app` and `client` fixtures for one service."""

    @pytest.fixture(scope="session")
    def settings(migrated_server, keys):
        return settings_cls(env="test", database_url=migrated_server, database_prefix=TEST_PREFIX,
                            jwks_json=keys.jwks_json, run_background=False, log_json=False, log_level="WARNING",
                            **{k: (v(keys) if callable(v) else v) for k, v in settings_overrides.items()})

    @pytest.fixture(scope="session")
    async def engine(settings):
        engine = make_engine(settings.service_database_url, pool_size=2)
        yield engine
        await engine.dispose()

    @pytest.fixture
    async def sessionmaker(engine):
        async with savepoint_sessionmaker(engine, service=service) as maker:
            yield maker

    @pytest.fixture
    async def session(sessionmaker):
        async with sessionmaker() as session:
            yield session

    @pytest.fixture(scope="session")
    def app(settings):
        return create_app(settings)

    @pytest.fixture
    async def client(app, sessionmaker):
        async with client_for(app, sessionmaker) as client:
            yield client
        app.dependency_overrides.clear()

    return settings, engine, sessionmaker, session, app, client
