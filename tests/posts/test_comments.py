from uuid import UUID

from shared.testing import outbox_events
from tests.posts.content_helpers import publish, secret_post


async def test_comment_and_one_level_of_replies(client, session, make_person, auth):
    author, alice, bob = await make_person(), await make_person(email="alice@corp.local"), await make_person()
    post = await publish(client, auth(author), body="ship it?")
    top = await client.post(f"/api/v1/posts/{post['id']}/comments", headers=auth(alice),
                            json={"body": "**yes** @alice-nope"})
    assert top.status_code == 201, top.text
    assert top.json()["body_html"] == "<p><strong>yes</strong> @alice-nope</p>\n"
    reply = await client.post(f"/api/v1/posts/{post['id']}/comments", headers=auth(bob),
                              json={"body": "agreed", "parent_id": top.json()["id"]})
    assert reply.status_code == 201 and reply.json()["parent_id"] == top.json()["id"]
    nested = await client.post(f"/api/v1/posts/{post['id']}/comments", headers=auth(author),
                               json={"body": "too deep", "parent_id": reply.json()["id"]})
    assert nested.status_code == 422 and nested.json()["code"] == "replies-one-level"
    listed = await client.get(f"/api/v1/posts/{post['id']}/comments", headers=auth(bob))
    assert [c["body"] for c in listed.json()["items"]] == ["**yes** @alice-nope", "agreed"]
    shown = await client.get(f"/api/v1/posts/{post['id']}", headers=auth(bob))
    assert shown.json()["comment_count"] == 2
    events = await outbox_events(session, type="hearth.comment.created")
    assert [e.payload().parent_author_id for e in events] == [None, alice.id]
    assert events[0].payload().post_author_id == author.id


async def test_comment_mentions_reach_only_readers_of_the_post(client, session, make_person, auth):
    author = await make_person()
    follower = await make_person(email="fan@corp.local")
    await make_person(email="stranger@corp.local")
    await client.post(f"/api/v1/people/{author.id}/follow", headers=auth(follower))
    post = await publish(client, auth(author), body="followers only", audience="followers")
    response = await client.post(f"/api/v1/posts/{post['id']}/comments", headers=auth(author),
                                 json={"body": "cc @fan @stranger"})
    assert response.status_code == 201
    [event] = await outbox_events(session, type="hearth.comment.created")
    assert event.payload().mentions == [follower.id]


async def test_only_the_author_edits_and_author_or_moderator_deletes_a_comment(client, session, make_person, auth):
    author, commenter, other = await make_person(), await make_person(), await make_person()
    moderator = await make_person(roles=["moderator"])
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/comments"
    first = (await client.post(url, headers=auth(commenter), json={"body": "v1"})).json()
    second = (await client.post(url, headers=auth(commenter), json={"body": "another"})).json()
    denied = await client.patch(f"{url}/{first['id']}", headers=auth(other), json={"body": "hijack"})
    assert denied.status_code == 403 and denied.json()["code"] == "not-comment-author"
    edited = await client.patch(f"{url}/{first['id']}", headers=auth(commenter), json={"body": "v2"})
    assert edited.status_code == 200 and edited.json()["body"] == "v2" and edited.json()["edited_at"]
    assert (await client.delete(f"{url}/{first['id']}", headers=auth(other))).status_code == 403
    assert (await client.delete(f"{url}/{first['id']}", headers=auth(commenter))).status_code == 204
    assert (await client.delete(f"{url}/{second['id']}", headers=auth(moderator))).status_code == 204
    assert (await client.get(url, headers=auth(author))).json()["items"] == []
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(author))).json()["comment_count"] == 0
    gone = await client.patch(f"{url}/{first['id']}", headers=auth(commenter), json={"body": "v3"})
    assert gone.status_code == 404 and gone.json()["code"] == "comment-not-found"
    assert len(await outbox_events(session, type="hearth.comment.deleted")) == 2


async def test_comment_of_another_post_is_not_found(client, make_person, auth):
    author = await make_person()
    one, two = await publish(client, auth(author)), await publish(client, auth(author))
    comment = (await client.post(f"/api/v1/posts/{one['id']}/comments", headers=auth(author),
                                 json={"body": "x"})).json()
    wrong = await client.patch(f"/api/v1/posts/{two['id']}/comments/{comment['id']}", headers=auth(author),
                               json={"body": "y"})
    assert wrong.status_code == 404


async def test_secret_group_post_comments_are_invisible_to_outsiders(client, make_person, auth):
    author, outsider, post = await secret_post(client, auth, make_person)
    url = f"/api/v1/posts/{post['id']}/comments"
    comment = (await client.post(url, headers=auth(author), json={"body": "inside"})).json()
    for response in [await client.get(url, headers=auth(outsider)),
                     await client.post(url, headers=auth(outsider), json={"body": "let me in"}),
                     await client.patch(f"{url}/{comment['id']}", headers=auth(outsider), json={"body": "x"}),
                     await client.delete(f"{url}/{comment['id']}", headers=auth(outsider))]:
        assert response.status_code == 404 and response.json()["code"] == "post-not-found"


async def test_comments_on_a_deleted_post_are_gone(client, make_person, auth):
    author, reader = await make_person(), await make_person()
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/comments"
    await client.post(url, headers=auth(reader), json={"body": "hi"})
    assert (await client.delete(f"/api/v1/posts/{post['id']}", headers=auth(author))).status_code == 204
    assert (await client.get(url, headers=auth(reader))).status_code == 404
    assert (await client.post(url, headers=auth(reader), json={"body": "hello?"})).status_code == 404


async def test_bad_comment_input_is_a_problem(client, make_person, auth):
    author = await make_person()
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/comments"
    for body in [{"body": ""}, {"body": "   "}, {"body": "x" * 10_001}, {"body": "x", "extra": 1},
                 {"body": "x", "parent_id": "not-a-uuid"}]:
        response = await client.post(url, headers=auth(author), json=body)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    missing_parent = await client.post(url, headers=auth(author),
                                       json={"body": "x", "parent_id": "00000000-0000-0000-0000-000000000000"})
    assert missing_parent.status_code == 404


async def test_comment_edits_keep_a_history_every_reader_can_see(client, session, make_person, auth):
    author, commenter, reader = await make_person(), await make_person(), await make_person()
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/comments"
    comment = (await client.post(url, headers=auth(commenter), json={"body": "first take"})).json()
    assert comment["version"] == 1
    await client.patch(f"{url}/{comment['id']}", headers=auth(commenter), json={"body": "second take"})
    edited = await client.patch(f"{url}/{comment['id']}", headers=auth(commenter), json={"body": "final take"})
    assert edited.json()["version"] == 3 and edited.json()["body"] == "final take"
    history = await client.get(f"{url}/{comment['id']}/edits", headers=auth(reader))
    assert history.status_code == 200, history.text
    assert [(h["version"], h["body"]) for h in history.json()] == [(2, "second take"), (1, "first take")]
    assert {h["edited_by"] for h in history.json()} == {str(commenter.id)} and history.json()[0]["created_at"]
    events = await outbox_events(session, type="hearth.comment.updated")
    assert [e.payload().version for e in events] == [2, 3]


async def test_comment_history_is_hidden_with_the_post_and_after_delete(client, make_person, auth):
    author, outsider, post = await secret_post(client, auth, make_person)
    url = f"/api/v1/posts/{post['id']}/comments"
    comment = (await client.post(url, headers=auth(author), json={"body": "inside"})).json()
    await client.patch(f"{url}/{comment['id']}", headers=auth(author), json={"body": "inside, edited"})
    assert len((await client.get(f"{url}/{comment['id']}/edits", headers=auth(author))).json()) == 1
    hidden = await client.get(f"{url}/{comment['id']}/edits", headers=auth(outsider))
    assert hidden.status_code == 404 and hidden.json()["code"] == "post-not-found"
    await client.delete(f"{url}/{comment['id']}", headers=auth(author))
    gone = await client.get(f"{url}/{comment['id']}/edits", headers=auth(author))
    assert gone.status_code == 404 and gone.json()["code"] == "comment-not-found"


async def test_comment_reactions_are_counted_by_kind_with_my_reaction(client, session, make_person, auth):
    author, alice, bob, carol = (await make_person(), await make_person(), await make_person(), await make_person())
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/comments"
    liked = (await client.post(url, headers=auth(author), json={"body": "react to me"})).json()
    quiet = (await client.post(url, headers=auth(author), json={"body": "nobody reacts"})).json()
    reaction = f"{url}/{liked['id']}/reaction"
    shown = await client.put(reaction, headers=auth(alice), json={"kind": "like"})
    assert shown.status_code == 200, shown.text
    assert shown.json()["reaction_counts"] == {"like": 1} and shown.json()["my_reaction"] == "like"
    await client.put(reaction, headers=auth(bob), json={"kind": "like"})
    await client.put(reaction, headers=auth(carol), json={"kind": "funny"})
    await client.put(reaction, headers=auth(bob), json={"kind": "insightful"})  # replaces bob's like
    await client.put(reaction, headers=auth(bob), json={"kind": "insightful"})  # repeating changes nothing
    items = (await client.get(url, headers=auth(bob))).json()["items"]
    assert [(c["reaction_counts"], c["my_reaction"]) for c in items] == [
        ({"like": 1, "funny": 1, "insightful": 1}, "insightful"), ({}, None)]
    assert items[1]["id"] == quiet["id"]
    removed = await client.delete(reaction, headers=auth(carol))
    assert removed.json()["reaction_counts"] == {"like": 1, "insightful": 1} and removed.json()["my_reaction"] is None
    assert (await client.delete(reaction, headers=auth(carol))).status_code == 200  # nothing left: no change
    added = await outbox_events(session, type="hearth.comment.reaction_added")
    assert [(e.payload().person_id, e.payload().kind, e.payload().previous_kind) for e in added] == [
        (alice.id, "like", None), (bob.id, "like", None), (carol.id, "funny", None), (bob.id, "insightful", "like")]
    assert {(e.payload().comment_author_id, e.payload().comment_id) for e in added} == {(author.id, UUID(liked["id"]))}
    assert {e.payload().excerpt for e in added} == {"react to me"}  # the comment's text, for its author's inbox
    [gone] = await outbox_events(session, type="hearth.comment.reaction_removed")
    assert (gone.payload().person_id, gone.payload().kind) == (carol.id, "funny")
    # reactions on comments are not the post's reactions
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(bob))).json()["reaction_counts"] == {}


async def test_comment_reactions_refuse_unknown_kinds_and_deleted_comments(client, make_person, auth):
    author = await make_person()
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/comments"
    comment = (await client.post(url, headers=auth(author), json={"body": "x"})).json()
    bad = await client.put(f"{url}/{comment['id']}/reaction", headers=auth(author), json={"kind": "angry"})
    assert bad.status_code == 422
    await client.delete(f"{url}/{comment['id']}", headers=auth(author))
    gone = await client.put(f"{url}/{comment['id']}/reaction", headers=auth(author), json={"kind": "like"})
    assert gone.status_code == 404 and gone.json()["code"] == "comment-not-found"


async def test_outsiders_cannot_react_to_comments_of_a_post_they_cannot_read(client, session, make_person, auth):
    author, outsider, post = await secret_post(client, auth, make_person)
    url = f"/api/v1/posts/{post['id']}/comments"
    comment = (await client.post(url, headers=auth(author), json={"body": "inside"})).json()
    await client.put(f"{url}/{comment['id']}/reaction", headers=auth(author), json={"kind": "celebrate"})
    for response in [await client.put(f"{url}/{comment['id']}/reaction", headers=auth(outsider), json={"kind": "like"}),
                     await client.delete(f"{url}/{comment['id']}/reaction", headers=auth(outsider))]:
        assert response.status_code == 404 and response.json()["code"] == "post-not-found"
    [shown] = (await client.get(url, headers=auth(author))).json()["items"]
    assert shown["reaction_counts"] == {"celebrate": 1} and shown["my_reaction"] == "celebrate"
    assert len(await outbox_events(session, type="hearth.comment.reaction_added")) == 1


async def test_a_comment_is_reached_only_through_its_own_post(client, make_person, auth):
    author, outsider, secret = await secret_post(client, auth, make_person)
    comment = (await client.post(f"/api/v1/posts/{secret['id']}/comments", headers=auth(author),
                                 json={"body": "inside"})).json()
    readable = await publish(client, auth(outsider))
    url = f"/api/v1/posts/{readable['id']}/comments/{comment['id']}"
    for response in [await client.put(f"{url}/reaction", headers=auth(outsider), json={"kind": "like"}),
                     await client.get(f"{url}/edits", headers=auth(outsider))]:
        assert response.status_code == 404 and response.json()["code"] == "comment-not-found"


async def test_comments_mention_groups_by_name_and_edits_update_the_mentions(client, make_person, auth):
    author, outsider = await make_person(), await make_person()
    public = (await client.post("/api/v1/groups", headers=auth(author),
                                json={"name": "Data Team", "visibility": "public"})).json()["id"]
    secret = (await client.post("/api/v1/groups", headers=auth(author),
                                json={"name": "Night Owls", "visibility": "secret"})).json()["id"]
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/comments"
    mine = (await client.post(url, headers=auth(author), json={"body": "@data-team @night-owls @nobody"})).json()
    assert sorted(mine["group_mentions"]) == sorted([public, secret]) and mine["mentions"] == []
    theirs = (await client.post(url, headers=auth(outsider), json={"body": "@data-team @night-owls"})).json()
    assert theirs["group_mentions"] == [public]  # a secret group is never resolved for outsiders
    edited = await client.patch(f"{url}/{mine['id']}", headers=auth(author), json={"body": "only @night-owls"})
    assert edited.json()["group_mentions"] == [secret]


async def test_a_comment_page_costs_the_same_statements_for_any_number_of_comments(client, make_person, auth,
                                                                                   statements):
    author, reader = await make_person(), await make_person()
    post = await publish(client, auth(author))
    url = f"/api/v1/posts/{post['id']}/comments"

    async def add(n):
        for _ in range(n):
            commenter = await make_person()
            comment = (await client.post(url, headers=auth(commenter), json={"body": "c"})).json()
            await client.put(f"{url}/{comment['id']}/reaction", headers=auth(reader), json={"kind": "support"})

    async def page_statements(limit):
        with statements() as seen:
            items = (await client.get(url, headers=auth(reader), params={"limit": limit})).json()["items"]
        assert len(items) == limit and all(c["author"] and c["my_reaction"] == "support" for c in items)
        return [s for s in seen if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))]

    await add(2)
    few = await page_statements(2)
    await add(8)
    assert len(await page_statements(10)) == len(few)
