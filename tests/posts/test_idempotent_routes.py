"""Idempotency-Key on the posts routes that create: groups, follows, API tokens."""

from sqlalchemy import func, select

from services.posts.auth.models import ApiToken
from services.posts.groups.models import Group
from shared.testing import outbox_events


async def test_creating_a_group_twice_with_one_key_creates_one_group(client, session, make_person, auth):
    owner = await make_person()
    headers = auth(owner) | {"Idempotency-Key": "group-1"}
    first = await client.post("/api/v1/groups", headers=headers, json={"name": "Retry guild"})
    again = await client.post("/api/v1/groups", headers=headers, json={"name": "Retry guild"})
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"], again.json()
    assert await session.scalar(select(func.count()).select_from(Group).where(Group.name == "Retry guild")) == 1
    other = await client.post("/api/v1/groups", headers=headers, json={"name": "Another guild"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency-key-reused"


async def test_another_person_reusing_my_key_gets_their_own_group(client, make_person, auth):
    ana, bo = await make_person(), await make_person()
    mine = await client.post("/api/v1/groups", headers=auth(ana) | {"Idempotency-Key": "k"}, json={"name": "Ana's"})
    theirs = await client.post("/api/v1/groups", headers=auth(bo) | {"Idempotency-Key": "k"}, json={"name": "Ana's"})
    assert theirs.status_code in (201, 409) and theirs.json().get("id") != mine.json()["id"]


async def test_follow_retried_with_a_key_is_replayed(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    headers = auth(ana) | {"Idempotency-Key": "follow-bo"}
    for _ in range(2):
        assert (await client.post(f"/api/v1/people/{bo.id}/follow", headers=headers)).status_code == 201
    assert len(await outbox_events(session, type="hearth.follow.created")) == 1


async def test_api_token_creation_retried_with_a_key_mints_one_token(client, session, make_person, auth):
    ana = await make_person()
    headers = auth(ana) | {"Idempotency-Key": "token-1"}
    body = {"name": "ci", "scopes": ["posts:read"]}
    first = await client.post("/auth/tokens", headers=headers, json=body)
    again = await client.post("/auth/tokens", headers=headers, json=body)
    assert first.status_code == 201 and again.json()["token"] == first.json()["token"]
    assert await session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.person_id == ana.id)) == 1


async def test_the_key_is_documented_on_creating_routes(client):
    spec = (await client.get("/openapi.json")).json()
    for path in ("/api/v1/groups", "/api/v1/people/{person_id}/follow", "/auth/tokens"):
        names = [p["name"] for p in spec["paths"][path]["post"].get("parameters", [])]
        assert "Idempotency-Key" in names, path
