"""Rate limits per person, per API token and per address, with stricter rules per route; 429 with headers."""

import pytest
from sqlalchemy import func, select

from services.posts.main import create_app
from shared.ratelimit import Rule, hit, parse_rule, peek, rate_limits_table
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
