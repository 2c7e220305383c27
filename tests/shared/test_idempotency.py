"""Idempotency-Key: one effect per (person, key), the first response replayed, other bodies refused."""

import asyncio
from uuid import uuid4

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from shared.auth import CurrentUserDep, TokenVerifier
from shared.db import SessionDep, make_sessionmaker
from shared.errors import install_error_handlers
from shared.idempotency import IdempotentRoute
from tests.waiting import until


def make_app(engine, keys) -> FastAPI:
    router = APIRouter(route_class=IdempotentRoute)

    @router.post("/things", status_code=201)
    async def create_thing(body: dict, session: SessionDep, user: CurrentUserDep):
        # A test that sends retries concurrently holds the first request here until they all arrived.
        await until(lambda: app.state.arrived >= app.state.hold_until_arrived, timeout=10,
                    message="every concurrent retry to arrive")
        thing_id = await session.scalar(text("INSERT INTO idem_effects (owner) VALUES (:o) RETURNING id"),
                                        {"o": str(user.id)})
        return {"id": thing_id, **body}  # the request's unit of work commits it

    @router.post("/failing")
    async def failing(user: CurrentUserDep):
        from shared.errors import Conflict
        raise Conflict("not now")

    app = FastAPI()
    app.state.arrived, app.state.hold_until_arrived = 0, 0

    @app.middleware("http")
    async def count_arrivals(request, call_next):
        app.state.arrived += 1
        return await call_next(request)

    install_error_handlers(app)
    app.include_router(router)
    app.state.sessionmaker = make_sessionmaker(engine, service="test")
    app.state.verifier = TokenVerifier(issuer="hearth", audience="hearth", jwks_json=keys.jwks_json)
    return app


@pytest.fixture
async def app(scratch_engine, keys):
    async with scratch_engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS idem_effects (id serial PRIMARY KEY, owner text)"))
        await conn.execute(text("TRUNCATE idem_effects, idempotency_keys"))
    return make_app(scratch_engine, keys)


@pytest.fixture
async def client(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def effects(scratch_engine) -> int:
    async with scratch_engine.connect() as conn:
        return await conn.scalar(text("SELECT count(*) FROM idem_effects"))


async def test_a_retry_with_the_same_key_and_body_replays_the_first_response(client, keys, scratch_engine):
    headers = keys.headers(uuid4()) | {"Idempotency-Key": "k-1"}
    first = await client.post("/things", json={"a": 1, "b": 2}, headers=headers)
    retry = await client.post("/things", content=b'{ "b": 2, "a": 1 }', headers=headers | {"content-type": "application/json"})
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    assert await effects(scratch_engine) == 1


async def test_the_same_key_with_another_body_is_422(client, keys, scratch_engine):
    headers = keys.headers(uuid4()) | {"Idempotency-Key": "k-2"}
    assert (await client.post("/things", json={"a": 1}, headers=headers)).status_code == 201
    other = await client.post("/things", json={"a": 2}, headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency-key-reused"
    assert await effects(scratch_engine) == 1


async def test_keys_are_per_person(client, keys, scratch_engine):
    for _ in range(2):
        response = await client.post("/things", json={}, headers=keys.headers(uuid4()) | {"Idempotency-Key": "same"})
        assert response.status_code == 201 and "idempotent-replayed" not in response.headers
    assert await effects(scratch_engine) == 2


async def test_concurrent_retries_make_one_effect_and_get_the_same_answer(app, client, keys, scratch_engine):
    headers = keys.headers(uuid4()) | {"Idempotency-Key": "k-3"}
    app.state.hold_until_arrived = 3  # the first runs while both retries wait on its key
    responses = await asyncio.gather(*(client.post("/things", json={"x": 1}, headers=headers) for _ in range(3)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await effects(scratch_engine) == 1


async def test_an_error_is_not_stored_so_the_client_can_retry(client, keys):
    headers = keys.headers(uuid4()) | {"Idempotency-Key": "k-4"}
    for _ in range(2):
        response = await client.post("/failing", headers=headers)
        assert response.status_code == 409 and "idempotent-replayed" not in response.headers


async def test_without_the_header_every_request_has_its_effect(client, keys, scratch_engine):
    headers = keys.headers(uuid4())
    for _ in range(2):
        assert (await client.post("/things", json={}, headers=headers)).status_code == 201
    assert await effects(scratch_engine) == 2


async def test_a_malformed_key_is_422(client, keys):
    for key in ("", "x" * 256, "has space", "tab\tkey"):
        response = await client.post("/things", json={}, headers=keys.headers(uuid4()) | {"Idempotency-Key": key})
        assert response.status_code == 422, key


async def test_the_kept_response_commits_in_the_same_transaction_as_the_effect(client, keys, scratch_engine):
    """No window where the effect is committed but its answer is not (a crash there would let a retry redo it)."""
    headers = keys.headers(uuid4()) | {"Idempotency-Key": "k-same-tx"}
    assert (await client.post("/things", json={"a": 1}, headers=headers)).status_code == 201
    async with scratch_engine.connect() as conn:
        effect_tx = await conn.scalar(text("SELECT xmin::text FROM idem_effects"))
        kept_tx = await conn.scalar(text("SELECT xmin::text FROM idempotency_keys WHERE key = 'k-same-tx'"))
    assert effect_tx == kept_tx
