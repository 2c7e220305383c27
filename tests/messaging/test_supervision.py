"""Messaging's background work runs under the service's supervisor: /readyz and /metrics see it, a crash restarts it."""

import asyncio
import re
import time
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from services.messaging.main import create_app
from services.messaging.realtime import presence
from shared.devstack.broker import TansuBroker
from shared.devstack.ports import free_port
from shared import fanout, kafka
from shared.kafka import ensure_topics

BOUND = 60.0  # fails a hung test; not a speed check
JOBS = {"outbox-relay", "messaging.directory", "messaging.fanout", "messaging.presence", "messaging.frame-purge",
        "messaging.ephemeral-producer"}


async def eventually(fetch, predicate, message: str):
    deadline = time.monotonic() + BOUND
    while True:
        result = await fetch()
        if predicate(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {message}; last: {result!r}")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def broker():
    broker = TansuBroker()
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
async def background_server(settings, broker):
    """The messaging app with its background work on, under a real uvicorn, on the test database and a broker."""
    async with serving(settings, broker) as server:
        yield server


@asynccontextmanager
async def serving(settings, broker, **overrides):
    app_settings = settings.model_copy(update={"run_background": True, "kafka_bootstrap": broker.bootstrap,
                                               "kafka_fetch_max_wait_ms": 20} | overrides)
    await ensure_topics(broker.bootstrap, app_settings.topics)
    app = create_app(app_settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=BOUND) as http:
            yield app, http
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, BOUND)


async def test_a_crashed_background_job_is_restarted_and_readyz_reports_it_while_down(background_server, monkeypatch):
    app, http = background_server
    assert {job.name for job in app.state.supervisor.jobs} == JOBS
    await eventually(lambda: http.get("/readyz"), lambda r: r.status_code == 200, "ready with every job up")

    failing = True
    real_apply = presence.apply

    async def apply(session, **kwargs):
        if failing:
            raise ConnectionError("presence write lost its connection")
        return await real_apply(session, **kwargs)

    monkeypatch.setattr(presence, "apply", apply)
    app.state.presence.mark(app.state.presence.replica_id)  # a presence change to write: the job crashes on it
    down = await eventually(lambda: http.get("/readyz"), lambda r: r.status_code == 503, "not ready while down")
    assert down.json()["background"]["messaging.presence"] is False
    assert all(up for name, up in down.json()["background"].items() if name != "messaging.presence")

    failing = False
    await eventually(lambda: http.get("/readyz"), lambda r: r.status_code == 200, "ready again after the restart")
    job = next(j for j in app.state.supervisor.jobs if j.name == "messaging.presence")
    assert job.restarts >= 1 and "presence write lost its connection" in job.last_error
    metrics = (await http.get("/metrics")).text
    assert re.search(r'hearth_background_restarts_total\{job="messaging.presence"\} [1-9]', metrics)
    assert re.search(r'hearth_background_up\{job="messaging.fanout",kind="fanout"\} 1.0', metrics)


async def test_the_fanout_reader_and_the_directory_consumer_fetch_with_their_own_waits(settings, broker, monkeypatch):
    # (Tansu holds a fetch for its whole wait: the fan-out's is the chat's latency floor, the directory's a poll)
    waits: dict[str, int] = {}

    class Recorded(kafka.AIOKafkaConsumer):
        def __init__(self, *topics, **options):
            waits["directory" if options.get("group_id") else "fanout"] = options["fetch_max_wait_ms"]
            super().__init__(*topics, **options)

    monkeypatch.setattr(kafka, "AIOKafkaConsumer", Recorded)
    monkeypatch.setattr(fanout, "AIOKafkaConsumer", Recorded)
    async def both_started():
        return dict(waits)

    async with serving(settings, broker, messaging_fanout_fetch_max_wait_ms=10,
                       messaging_directory_fetch_max_wait_ms=100):
        assert await eventually(both_started, lambda w: len(w) == 2, "both readers started") == \
            {"fanout": 10, "directory": 100}
    waits.clear()
    async with serving(settings, broker):  # unset: the service-wide wait, as before
        assert await eventually(both_started, lambda w: len(w) == 2, "both readers started") == \
            {"fanout": 20, "directory": 20}
