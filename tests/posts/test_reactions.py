from shared.testing import outbox_events
from tests.posts.content_helpers import publish, secret_post


async def test_one_reaction_per_person_counted_by_kind(client, session, make_person, auth):
    author, alice, bob = await make_person(), await make_person(), await make_person()
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/reaction"
    assert (await client.put(url, headers=auth(alice), json={"kind": "like"})).status_code == 200
    assert (await client.put(url, headers=auth(bob), json={"kind": "like"})).status_code == 200
    changed = await client.put(url, headers=auth(alice), json={"kind": "celebrate"})
    assert changed.json()["reaction_counts"] == {"like": 1, "celebrate": 1}
    assert changed.json()["my_reaction"] == "celebrate"
    again = await client.put(url, headers=auth(alice), json={"kind": "celebrate"})  # repeating changes nothing
    assert again.json()["reaction_counts"] == {"like": 1, "celebrate": 1}
    removed = await client.delete(url, headers=auth(bob))
    assert removed.json()["reaction_counts"] == {"celebrate": 1} and removed.json()["my_reaction"] is None
    added = [e.payload() for e in await outbox_events(session, type="hearth.reaction.added")]
    assert [(a.kind, a.previous_kind) for a in added] == [("like", None), ("like", None), ("celebrate", "like")]
    [gone] = await outbox_events(session, type="hearth.reaction.removed")
    assert gone.payload().person_id == bob.id and gone.payload().post_author_id == author.id


async def test_unknown_reaction_kind_is_refused(client, make_person, auth):
    author = await make_person()
    post = await publish(client, auth(author))
    response = await client.put(f"/api/v1/posts/{post['id']}/reaction", headers=auth(author), json={"kind": "angry"})
    assert response.status_code == 422 and response.json()["code"] == "validation-failed"


async def test_bookmarks_are_private_and_idempotent(client, session, make_person, auth):
    author, reader = await make_person(), await make_person()
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/bookmark"
    assert (await client.put(url, headers=auth(reader))).status_code == 204
    assert (await client.put(url, headers=auth(reader))).status_code == 204
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(reader))).json()["bookmarked"] is True
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(author))).json()["bookmarked"] is False
    assert (await client.delete(url, headers=auth(reader))).status_code == 204
    events = await outbox_events(session, type="hearth.post.bookmarked")
    assert [e.payload().bookmarked for e in events] == [True, False]


async def test_outsiders_cannot_react_to_or_bookmark_a_secret_group_post(client, session, make_person, auth):
    author, outsider, post = await secret_post(client, auth, make_person)
    base = f"/api/v1/posts/{post['id']}"
    for response in [await client.put(f"{base}/reaction", headers=auth(outsider), json={"kind": "like"}),
                     await client.delete(f"{base}/reaction", headers=auth(outsider)),
                     await client.put(f"{base}/bookmark", headers=auth(outsider)),
                     await client.delete(f"{base}/bookmark", headers=auth(outsider))]:
        assert response.status_code == 404
    assert await outbox_events(session, type="hearth.reaction.added") == []
