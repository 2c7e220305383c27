"""Each service's migrations build exactly what its models declare (no drift, nothing unmigrated)."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from shared.devstack.stack import SERVICES, database_url
from shared.directory import directory_metadata
from shared.outbox import infra_metadata
from tests.conftest import TEST_PREFIX


def metadata_of(service: str):
    import importlib
    importlib.import_module(f"services.{service}.models")
    service_metadata = importlib.import_module(f"services.{service}.db").metadata
    return [service_metadata, infra_metadata] + ([] if service == "posts" else [directory_metadata])


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_models(service, migrated_server):
    engine = create_async_engine(database_url(migrated_server, TEST_PREFIX + service))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata_of(service)))
    finally:
        await engine.dispose()
    assert diff == [], f"run `alembic -c services/{service}/alembic.ini revision --autogenerate`: {diff}"
