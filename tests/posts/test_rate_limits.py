"""Rate limits per person, per API token and per address, with stricter rules per route; 429 with headers."""

from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import delete, func, select

from services.posts.main import create_app
from shared.db import make_engine
from shared.ratelimit import Rule, _count_on_pooled_connection, count, hit, parse_rule, peek, rate_limits_table
from shared.testing import client_for

LIMITS = {"rate_limits_enabled": True, "rate_limit_person": "5/60", "rate_limit_address": "4/60",
          "rate_limit_login": "2/60", "rate_limit_follow": "2/3600", "rate_limit_token_create": "1/3600"}


@pytest.fixture
async def limited(settings, sessionmaker):
    app = create_app(settings.model_copy(update=LIMITS))
    async with client_for(app, sessionmaker) as client:
        yield client


def assert_429(response, rule: str):
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "rate-limited" and body["rule"] == rule
    assert 1 <= int(response.headers["retry-after"]) <= 3600
    assert response.headers["ratelimit-remaining"] == "0"


async def test_a_person_gets_their_limit_per_minute_then_429(limited, make_person, auth):
    ana, bo = await make_person(), await make_person()
    for n in range(5):
        response = await limited.get("/api/v1/people/me", headers=auth(ana))
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "5" and response.headers["ratelimit-remaining"] == str(4 - n)
    assert_429(await limited.get("/api/v1/people/me", headers=auth(ana)), "person")
    assert (await limited.get("/api/v1/people/me", headers=auth(bo))).status_code == 200  # per person


async def test_anonymous_callers_are_limited_per_address(limited):
    for _ in range(2):
        assert (await limited.get("/api/v1/people/me")).status_code == 401
    for _ in range(2):
        await limited.get("/.well-known/jwks.json")
    assert_429(await limited.get("/.well-known/jwks.json"), "address")
    assert (await limited.get("/healthz")).status_code == 200  # health checks are never limited


async def test_sign_in_has_a_stricter_limit_per_address(limited):
    for _ in range(2):
        response = await limited.post("/auth/login", json={"email": "x@corp.local", "password": "nope"})
        assert response.status_code == 401
    assert_429(await limited.post("/auth/login", json={"email": "y@corp.local", "password": "nope"}), "login")


async def test_follows_and_token_creation_have_stricter_limits(limited, make_person, auth):
    ana, bo = await make_person(), await make_person()
    assert (await limited.post(f"/api/v1/people/{bo.id}/follow", headers=auth(ana))).status_code == 201
    assert (await limited.delete(f"/api/v1/people/{bo.id}/follow", headers=auth(ana))).status_code == 204
    assert_429(await limited.post(f"/api/v1/people/{bo.id}/follow", headers=auth(ana)), "follow")
    body = {"name": "ci", "scopes": ["posts:read"]}
    assert (await limited.post("/auth/tokens", headers=auth(bo), json=body)).status_code == 201
    assert_429(await limited.post("/auth/tokens", headers=auth(bo), json=body), "token_create")


async def test_counts_are_kept_in_postgresql_per_window(session):
    rule = Rule("t", limit=2, period=60)
    decisions = [await hit(session, rule=rule, subject="s") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert (await peek(session, rule=rule, subject="s")).hits == 3
    assert await session.scalar(select(func.count()).select_from(rate_limits_table)) == 1


def test_rules_are_settings_and_bad_ones_stop_start_up():
    assert parse_rule("rate_limit_post", "30/60") == Rule("post", 30, 60)
    for bad in ("0/60", "x/60", "5/0", "5/100000"):
        with pytest.raises(ValueError):
            parse_rule("rate_limit_post", bad)


async def test_outside_tests_the_count_runs_on_a_pooled_connection_and_every_replica_sees_it(engine):
    """The production path (no session override): committed at once, one shared count across two "replicas"
    (two engines), the connection back in the pool, and a failed statement's connection not reused."""
    replica = make_engine(str(engine.url.render_as_string(hide_password=False)), pool_size=1)
    bucket = f"person:test-{uuid4()}"
    rule = Rule("person", limit=2, period=60)

    def request_to(app_engine):
        return SimpleNamespace(app=SimpleNamespace(dependency_overrides={}, state=SimpleNamespace(engine=app_engine)))

    try:
        decisions = [await count(request_to(e), [(rule, bucket.removeprefix("person:"))])
                     for e in (engine, replica, engine)]
        assert [d[0].hits for d in decisions] == [1, 2, 3]
        assert [d[0].allowed for d in decisions] == [True, True, False]
        assert engine.sync_engine.pool.checkedout() == 0 and replica.sync_engine.pool.checkedout() == 0
        # A statement that fails (two buckets, one window: a NULL window_start) leaves no connection out.
        with pytest.raises(asyncpg.NotNullViolationError):
            await _count_on_pooled_connection(replica, [bucket + ":a", bucket + ":b"], [datetime.now(UTC)],
                                              datetime.now(UTC))
        assert replica.sync_engine.pool.checkedout() == 0
        assert (await count(request_to(replica), [(rule, bucket.removeprefix("person:"))]))[0].hits == 4
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(rate_limits_table).where(rate_limits_table.c.bucket.like("%test-%")))
        await replica.dispose()
