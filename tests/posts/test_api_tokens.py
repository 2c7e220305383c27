import hashlib
from datetime import timedelta

import jwt
from sqlalchemy import func, select, update

from services.posts.auth.api_tokens import check_api_token
from services.posts.auth.models import ApiToken
from services.posts.people.models import Person
from shared.outbox import revoked_tokens_table
from shared.testing import outbox_events


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def count_tokens(session) -> int:
    return await session.scalar(select(func.count()).select_from(ApiToken))


async def create_token(client, headers, **fields):
    body = {"name": "ci bot", "scopes": ["people:read"]} | fields
    response = await client.post("/auth/tokens", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_created_token_is_shown_once_scoped_and_carries_the_persons_roles(client, session, make_person, auth):
    person = await make_person(roles=["communications"])
    created = await create_token(client, auth(person), scopes=["people:read", "posts:read", "people:read"],
                                 expires_in_days=7)
    claims = jwt.decode(created["token"], options={"verify_signature": False})
    assert claims["typ"] == "api" and claims["jti"] == created["id"] and claims["sub"] == str(person.id)
    assert sorted(claims["scope"].split()) == ["people:read", "posts:read"] == created["scopes"]
    assert sorted(claims["roles"]) == ["communications", "member"] == sorted(created["roles"])
    assert claims["exp"] - claims["iat"] == 7 * 86400
    row = await session.get(ApiToken, created["id"])
    assert row.token_hash == hashlib.sha256(created["token"].encode()).hexdigest()
    me = await client.get("/api/v1/people/me", headers=bearer(created["token"]))
    assert me.status_code == 200 and me.json()["id"] == str(person.id)


async def test_token_is_limited_to_its_scopes_everywhere(client, make_person, auth):
    person = await make_person()
    token = (await create_token(client, auth(person), scopes=["people:read"]))["token"]
    write = await client.post("/api/v1/posts", headers=bearer(token), json={"body": "from a bot"})
    assert write.status_code == 403 and write.json()["code"] == "missing-scope"
    assert write.json()["required_scope"] == "posts:write"
    # There is no people:write scope: a token can never edit a profile, and never manage tokens.
    patch = await client.patch("/api/v1/people/me", headers=bearer(token), json={"title": "Bot"})
    assert patch.status_code == 403 and patch.json()["code"] == "api-token-not-allowed"
    mint = await client.post("/auth/tokens", headers=bearer(token), json={"name": "x", "scopes": ["posts:read"]})
    assert mint.status_code == 403 and mint.json()["code"] == "api-token-not-allowed"


async def test_list_shows_only_the_callers_tokens_without_secrets(client, make_person, auth):
    ana, bo = await make_person(), await make_person()
    first = await create_token(client, auth(ana), name="first")
    second = await create_token(client, auth(ana), name="second")
    await create_token(client, auth(bo), name="bo's")
    response = await client.get("/auth/tokens", headers=auth(ana))
    assert response.status_code == 200
    items = response.json()["items"]
    assert [t["id"] for t in items] == [second["id"], first["id"]]
    assert all("token" not in t and "token_hash" not in t for t in items)
    assert items[0]["revoked"] is False and items[0]["last_used_at"] is None and items[0]["expires_at"]
    page = (await client.get("/auth/tokens?limit=1", headers=auth(ana))).json()
    assert [t["id"] for t in page["items"]] == [second["id"]] and page["next_cursor"]


async def test_last_used_at_is_recorded_at_most_once_a_minute(client, session, make_person, auth):
    person = await make_person()
    created = await create_token(client, auth(person))
    assert (await client.get("/api/v1/people/me", headers=bearer(created["token"]))).status_code == 200
    first_use = (await session.get(ApiToken, created["id"], populate_existing=True)).last_used_at
    assert first_use is not None
    await client.get("/api/v1/people/me", headers=bearer(created["token"]))
    assert (await session.get(ApiToken, created["id"], populate_existing=True)).last_used_at == first_use
    await session.execute(update(ApiToken).where(ApiToken.id == created["id"])
                          .values(last_used_at=first_use - timedelta(minutes=2)))
    await session.commit()
    await client.get("/api/v1/people/me", headers=bearer(created["token"]))
    assert (await session.get(ApiToken, created["id"], populate_existing=True)).last_used_at > first_use


async def test_revoking_stops_the_token_and_tells_every_service(client, session, make_person, auth):
    person = await make_person()
    created = await create_token(client, auth(person))
    response = await client.delete(f"/auth/tokens/{created['id']}", headers=auth(person))
    assert response.status_code == 204
    refused = await client.get("/api/v1/people/me", headers=bearer(created["token"]))
    assert refused.status_code == 401 and refused.json()["code"] == "token-revoked"
    assert await session.scalar(select(revoked_tokens_table.c.jti)) is not None
    [event] = await outbox_events(session, type="hearth.api_token.revoked")
    assert str(event.payload().token_id) == created["id"] and event.payload().person_id == person.id
    assert event.actor == person.id
    listed = (await client.get("/auth/tokens", headers=auth(person))).json()["items"]
    assert listed[0]["revoked"] is True and listed[0]["revoked_at"]
    # Revoking again changes nothing and announces nothing new.
    assert (await client.delete(f"/auth/tokens/{created['id']}", headers=auth(person))).status_code == 204
    assert len(await outbox_events(session, type="hearth.api_token.revoked")) == 1


async def test_someone_elses_token_is_not_found_and_keeps_working(client, session, make_person, auth):
    owner, other = await make_person(), await make_person()
    created = await create_token(client, auth(owner))
    response = await client.delete(f"/auth/tokens/{created['id']}", headers=auth(other))
    assert response.status_code == 404 and response.json()["code"] == "api-token-not-found"
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/people/me", headers=bearer(created["token"]))).status_code == 200
    assert await outbox_events(session, type="hearth.api_token.revoked") == []


async def test_anonymous_callers_get_401_on_every_token_endpoint(client, session, make_person, auth):
    person = await make_person()
    created = await create_token(client, auth(person))
    for method, url, body in [("POST", "/auth/tokens", {"name": "x", "scopes": ["posts:read"]}),
                              ("GET", "/auth/tokens", None), ("DELETE", f"/auth/tokens/{created['id']}", None)]:
        response = await client.request(method, url, json=body)
        assert response.status_code == 401, url
        assert response.headers["content-type"] == "application/problem+json"
    assert await count_tokens(session) == 1
    assert (await session.get(ApiToken, created["id"])).revoked_at is None


async def test_bad_input_is_a_422_problem_and_creates_nothing(client, session, make_person, auth):
    person = await make_person()
    cases = [{"name": "x", "scopes": ["posts:delete"]}, {"name": "x", "scopes": []}, {"scopes": ["posts:read"]},
             {"name": "   ", "scopes": ["posts:read"]}, {"name": "x", "scopes": ["posts:read"], "expires_in_days": 0},
             {"name": "x", "scopes": ["posts:read"], "expires_in_days": 366},
             {"name": "x", "scopes": ["posts:read"], "roles": ["admin"]}]
    for body in cases:
        response = await client.post("/auth/tokens", headers=auth(person), json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "validation-failed"
    bad_id = await client.delete("/auth/tokens/not-a-uuid", headers=auth(person))
    assert bad_id.status_code == 422
    assert await count_tokens(session) == 0


async def test_deactivated_persons_tokens_stop_working(client, session, make_person, auth):
    person = await make_person()
    created = await create_token(client, auth(person))
    await session.execute(update(Person).where(Person.id == person.id).values(active=False))
    await session.commit()
    refused = await client.get("/api/v1/people/me", headers=bearer(created["token"]))
    assert refused.status_code == 401 and refused.json()["code"] == "token-revoked"


async def test_token_loses_roles_the_person_no_longer_holds(client, session, app, make_person, auth):
    admin = await make_person(roles=["admin"])
    token = (await create_token(client, auth(admin)))["token"]
    await session.execute(update(Person).where(Person.id == admin.id).values(roles=["member"]))
    await session.commit()
    user = await app.state.verifier.verify(token)
    assert "admin" in user.roles  # the signed claim still says admin ...
    checked = await check_api_token(session, user)
    assert checked.roles == frozenset({"member"})  # ... but the guard only lets through what is held now


async def test_api_tokens_work_again_after_reactivation(client, sessionmaker, make_person, auth):
    from services.posts.people import service as people
    person = await make_person()
    created = await create_token(client, auth(person), scopes=["people:read"])
    async with sessionmaker() as s:
        await people.deactivate(s, person=await s.get(Person, person.id), actor=None)
        await s.commit()
    assert (await client.get("/api/v1/people/me", headers=bearer(created["token"]))).status_code == 401
    async with sessionmaker() as s:
        await people.reactivate(s, person=await s.get(Person, person.id), actor=None)
        await s.commit()
    assert (await client.get("/api/v1/people/me", headers=bearer(created["token"]))).status_code == 200
