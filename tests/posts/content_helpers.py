"""Helpers for the content tests: publish posts and groups over the API."""


async def publish(client, headers, **fields) -> dict:
    response = await client.post("/api/v1/posts", headers=headers, json={"body": "hello", **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def make_group(client, headers, visibility="public", **fields) -> str:
    response = await client.post("/api/v1/groups", headers=headers,
                                 json={"name": f"{visibility} group", "visibility": visibility, **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def invite_in(client, auth, owner, group_id, person) -> None:
    sent = await client.post(f"/api/v1/groups/{group_id}/invites", headers=auth(owner),
                             json={"person_id": str(person.id)})
    assert sent.status_code in (200, 201), sent.text
    accepted = await client.post(f"/api/v1/groups/invites/{sent.json()['id']}/accept", headers=auth(person))
    assert accepted.status_code in (200, 201, 204), accepted.text


async def follow(client, auth, follower, followee) -> None:
    response = await client.post(f"/api/v1/people/{followee.id}/follow", headers=auth(follower))
    assert response.status_code in (200, 201), response.text


async def secret_post(client, auth, make_person) -> tuple:
    """A post in a secret group: (author, outsider, post) — the outsider must never learn of it."""
    author, outsider = await make_person(), await make_person()
    group_id = await make_group(client, auth(author), "secret")
    return author, outsider, await publish(client, auth(author), group_id=group_id, body="secret plans")
