"""Session tokens are only as good as the facts behind them: logout, theft, deactivation and demotion."""

import jwt
import pytest
from sqlalchemy import update

from services.posts.main import create_app
from services.posts.people import service as people
from services.posts.people.models import Person
from shared.testing import outbox_events


GUARD_IN_COUNT = "guard read in the rate limiter's count"


@pytest.fixture(params=["guard asked by the route", GUARD_IN_COUNT])
def app(request, settings):
    """Every test twice: rate limits off (current_user asks the guard) and on (the guard's facts ride in the
    round trip of the rate limiter's count, and current_user takes that verdict): the same refusals either way."""
    on = request.param == GUARD_IN_COUNT
    return create_app(settings.model_copy(update={"rate_limits_enabled": on, "rate_limit_person": "1000/60",
                                                  "rate_limit_address": "1000/60", "rate_limit_login": "1000/60"}))


async def sign_in(client, email, password="correct-horse") -> dict:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200
    return response.json()


def bearer(tokens: dict) -> dict:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_access_tokens_carry_the_sign_in_as_sid_and_keep_it_across_refresh(client, make_person):
    await make_person(email="sid@corp.local")
    tokens = await sign_in(client, "sid@corp.local")
    refreshed = (await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    sid = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
    assert jwt.decode(refreshed["access_token"], options={"verify_signature": False})["sid"] == sid


async def test_logout_refuses_the_sessions_access_tokens_at_once_and_tells_other_services(client, session,
                                                                                         make_person):
    person = await make_person(email="out@corp.local")
    tokens, other = await sign_in(client, "out@corp.local"), await sign_in(client, "out@corp.local")
    assert (await client.get("/api/v1/people/me", headers=bearer(tokens))).status_code == 200
    assert (await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})).status_code == 204
    refused = await client.get("/api/v1/people/me", headers=bearer(tokens))
    assert refused.status_code == 401 and refused.json()["code"] == "session-ended"
    assert (await client.get("/api/v1/people/me", headers=bearer(other))).status_code == 200  # another sign-in
    [event] = await outbox_events(session, type="hearth.session.revoked")
    sid = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
    assert event.data["person_id"] == str(person.id) and event.data["session_ids"] == [sid]


async def test_refresh_token_reuse_ends_the_thiefs_and_the_owners_access_tokens(client, make_person):
    await make_person(email="theft@corp.local")
    first = await sign_in(client, "theft@corp.local")
    second = (await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert (await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})).status_code == 401
    for tokens in (first, second):
        assert (await client.get("/api/v1/people/me", headers=bearer(tokens))).status_code == 401


async def test_deactivation_refuses_unexpired_session_tokens_at_once(client, sessionmaker, make_person, auth):
    person = await make_person(email="leaver@corp.local")
    tokens = await sign_in(client, "leaver@corp.local")
    minted = auth(person)  # a token without sid: the person check alone must refuse it
    async with sessionmaker() as s:
        await people.deactivate(s, person=await s.get(Person, person.id), actor=None)
        await s.commit()
    for headers in (bearer(tokens), minted):
        refused = await client.get("/api/v1/people/me", headers=headers)
        assert refused.status_code == 401 and refused.json()["code"] == "token-revoked"


async def test_a_demoted_admins_unexpired_token_is_no_longer_admin(client, session, make_person, auth):
    admin, other = await make_person(roles=["admin"]), await make_person()
    headers = auth(admin)  # claims admin
    assert (await client.patch(f"/api/v1/people/{other.id}", headers=headers, json={"title": "x"})).status_code == 200
    await session.execute(update(Person).where(Person.id == admin.id).values(roles=["member"]))
    await session.commit()
    assert (await client.patch(f"/api/v1/people/{other.id}", headers=headers, json={"title": "y"})).status_code == 403


async def test_a_token_for_someone_posts_does_not_know_is_refused(client, keys):
    from uuid6 import uuid7
    assert (await client.get("/api/v1/people/me", headers=keys.headers(uuid7()))).status_code == 401


async def test_a_new_password_ends_every_sign_in(client, sessionmaker, make_person):
    person = await make_person(email="pw@corp.local")
    tokens = await sign_in(client, "pw@corp.local")
    async with sessionmaker() as s:
        await people.set_password(s, person=await s.get(Person, person.id), password="another-horse")
        await s.commit()
    assert (await client.get("/api/v1/people/me", headers=bearer(tokens))).status_code == 401


async def test_a_token_remembered_as_verified_is_still_refused_on_the_next_request_after_deactivation(
        client, app, sessionmaker, make_person):
    """The verifier keeps a token's signature check (shared.auth); the guard still runs on every request."""
    person = await make_person(email="cached@corp.local")
    tokens = await sign_in(client, "cached@corp.local")
    assert (await client.get("/api/v1/people/me", headers=bearer(tokens))).status_code == 200
    assert tokens["access_token"] in app.state.verifier._verified  # the next request skips the signature check
    async with sessionmaker() as s:
        await people.deactivate(s, person=await s.get(Person, person.id), actor=None)
        await s.commit()
    refused = await client.get("/api/v1/people/me", headers=bearer(tokens))
    assert refused.status_code == 401 and refused.json()["code"] == "token-revoked"


async def test_the_guard_is_read_once_per_request_in_the_counts_statement_when_rate_limits_are_on(
        client, app, make_person, auth, statements):
    person = await make_person()
    with statements() as seen:
        assert (await client.get("/api/v1/people/me", headers=auth(person))).status_code == 200
    guard = [sql for sql in seen if "revoked_sessions" in sql]
    assert len(guard) == 1
    assert ("INSERT INTO rate_limits" in guard[0]) == app.state.settings.rate_limits_on
