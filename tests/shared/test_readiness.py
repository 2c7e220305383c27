"""/readyz, as the README promises: 200 only while the database, the broker and every supervised job are up."""

import asyncio

import httpx
import pytest

from shared.app import create_service_app
from shared.config import HearthSettings
from shared.db import make_engine
from shared.devstack.ports import free_port
from tests.waiting import until


def service_app(keys, *, bootstrap: str, engine):
    settings = HearthSettings(env="test", kafka_bootstrap=bootstrap, jwks_json=keys.jwks_json, run_background=False)
    app = create_service_app(settings=settings, title="readiness", description="readiness test", routers=[])
    app.state.engine = engine  # what the lifespan would set; the supervisor is the app's own
    return app


async def readyz(app) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get("/readyz")


@pytest.fixture
async def supervised(keys, broker, scratch_engine):
    """An app with one supervised job, healthy until the test breaks something."""
    app = service_app(keys, bootstrap=broker.bootstrap, engine=scratch_engine)
    app.state.supervisor.add("worker", lambda stop: stop.wait())
    app.state.supervisor.start()
    await until(lambda: app.state.supervisor.healthy, timeout=10, message="the job to start")
    yield app
    await app.state.supervisor.shutdown(timeout=5)


async def test_ready_while_database_broker_and_every_job_are_up(supervised):
    response = await readyz(supervised)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": True, "broker": True, "background": True}


async def test_unready_while_the_database_is_down(keys, broker):
    unreachable = make_engine(f"postgresql+asyncpg://hearth@127.0.0.1:{free_port()}/hearth", pool_size=1)
    app = service_app(keys, bootstrap=broker.bootstrap, engine=unreachable)
    try:
        response = await readyz(app)
    finally:
        await unreachable.dispose()
    assert response.status_code == 503, response.text
    assert response.json()["checks"] == {"database": False, "broker": True, "background": True}


async def test_unready_while_the_broker_is_down(keys, scratch_engine):
    response = await readyz(service_app(keys, bootstrap=f"127.0.0.1:{free_port()}", engine=scratch_engine))
    assert response.status_code == 503, response.text
    assert response.json()["checks"] == {"database": True, "broker": False, "background": True}


async def test_unready_while_a_supervised_job_is_down(keys, broker, scratch_engine):
    app = service_app(keys, bootstrap=broker.bootstrap, engine=scratch_engine)
    app.state.supervisor.min_backoff = 60  # the crashed job stays down (waiting to restart) for the test
    crash = asyncio.Event()

    async def job(stop):
        await asyncio.wait([asyncio.ensure_future(stop.wait()), asyncio.ensure_future(crash.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if crash.is_set():
            raise RuntimeError("the consumer died")

    app.state.supervisor.add("consumer", job, kind="consumer")
    app.state.supervisor.start()
    try:
        await until(lambda: app.state.supervisor.healthy, timeout=10, message="the job to start")
        assert (await readyz(app)).status_code == 200
        crash.set()
        await until(lambda: not app.state.supervisor.healthy, timeout=10, message="the supervisor to see the job down")
        down = await readyz(app)
        assert down.status_code == 503, down.text
        assert down.json()["checks"] == {"database": True, "broker": True, "background": False}
        assert down.json()["background"] == {"consumer": False}
    finally:
        await app.state.supervisor.shutdown(timeout=5)
