from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from services.posts.content.models import Post
from shared.testing import outbox_events
from tests.posts.content_helpers import invite_in, make_group, publish, secret_post


def poll(options=("Lisbon", "Berlin", "Remote"), **extra):
    return {"kind": "poll", "body": "Where?", "poll": {"options": list(options), **extra}}


async def test_results_are_hidden_until_you_vote_and_single_choice_takes_one(client, session, make_person, auth):
    author, voter, lurker = await make_person(), await make_person(), await make_person()
    post = await publish(client, auth(author), **poll())
    options = [o["id"] for o in post["poll"]["options"]]
    assert post["poll"]["results_visible"] is True  # the author sees results
    hidden = (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(lurker))).json()["poll"]
    assert hidden["results_visible"] is False and {o["votes"] for o in hidden["options"]} == {None}
    two = await client.post(f"/api/v1/posts/{post['id']}/votes", headers=auth(voter), json={"option_ids": options[:2]})
    assert two.status_code == 422 and two.json()["code"] == "invalid-vote"
    voted = await client.post(f"/api/v1/posts/{post['id']}/votes", headers=auth(voter),
                              json={"option_ids": options[:1]})
    assert voted.status_code == 200
    assert [o["votes"] for o in voted.json()["poll"]["options"]] == [1, 0, 0]
    changed = await client.post(f"/api/v1/posts/{post['id']}/votes", headers=auth(voter),
                                json={"option_ids": options[2:]})
    assert [o["votes"] for o in changed.json()["poll"]["options"]] == [0, 0, 1]
    assert changed.json()["poll"]["my_votes"] == [options[2]] and changed.json()["poll"]["voters"] == 1
    assert len(await outbox_events(session, type="hearth.poll.voted")) == 2


async def test_multiple_choice_poll_and_foreign_options(client, make_person, auth):
    author, voter = await make_person(), await make_person()
    post = await publish(client, auth(author), **poll(multiple=True))
    other = await publish(client, auth(author), **poll(("A", "B")))
    options = [o["id"] for o in post["poll"]["options"]]
    both = await client.post(f"/api/v1/posts/{post['id']}/votes", headers=auth(voter), json={"option_ids": options[:2]})
    assert [o["votes"] for o in both.json()["poll"]["options"]] == [1, 1, 0]
    foreign = await client.post(f"/api/v1/posts/{post['id']}/votes", headers=auth(voter),
                                json={"option_ids": [other["poll"]["options"][0]["id"]]})
    assert foreign.status_code == 422


async def test_closed_poll_refuses_votes_and_shows_results_to_all(client, session, make_person, auth):
    author, voter = await make_person(), await make_person()
    closes = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    post = await publish(client, auth(author), **poll(closes_at=closes))
    await session.execute(update(Post).where(Post.id == post["id"])
                          .values(poll_closes_at=datetime.now(UTC) - timedelta(seconds=1)))
    await session.commit()
    response = await client.post(f"/api/v1/posts/{post['id']}/votes", headers=auth(voter),
                                 json={"option_ids": [post["poll"]["options"][0]["id"]]})
    assert response.status_code == 409 and response.json()["code"] == "poll-closed"
    shown = (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(voter))).json()["poll"]
    assert shown["closed"] and shown["results_visible"] and shown["voters"] == 0


async def test_poll_shape_is_validated(client, session, make_person, auth):
    author = await make_person()
    for body in [poll(("only one",)), poll([f"o{i}" for i in range(11)]), poll(("same", "Same")),
                 {"kind": "poll", "body": "no options"},
                 {"kind": "update", "body": "x", "poll": {"options": ["a", "b"]}},
                 poll(closes_at="2030-01-01T00:00:00"), poll(("a", "x" * 201))]:
        response = await client.post("/api/v1/posts", headers=auth(author), json=body)
        assert response.status_code == 422, body


async def test_voting_on_a_non_poll_or_an_unreadable_poll(client, make_person, auth):
    author, other = await make_person(), await make_person()
    update_post = await publish(client, auth(author))
    response = await client.post(f"/api/v1/posts/{update_post['id']}/votes", headers=auth(other),
                                 json={"option_ids": [update_post["id"]]})
    assert response.status_code == 409 and response.json()["code"] == "not-a-poll"
    group_id = await make_group(client, auth(author), "secret")
    secret = await publish(client, auth(author), group_id=group_id, **poll())
    hidden = await client.post(f"/api/v1/posts/{secret['id']}/votes", headers=auth(other),
                               json={"option_ids": [secret["poll"]["options"][0]["id"]]})
    assert hidden.status_code == 404


async def test_best_answer_by_the_author_or_a_group_admin_only(client, session, make_person, auth):
    asker, answerer, admin, member = await make_person(), await make_person(), await make_person(), await make_person()
    group_id = await make_group(client, auth(admin), "public")
    for person in (asker, answerer, member):
        await client.post(f"/api/v1/groups/{group_id}/join", headers=auth(person))
    question = await publish(client, auth(asker), kind="question", body="How do I deploy?", group_id=group_id)
    answer = (await client.post(f"/api/v1/posts/{question['id']}/comments", headers=auth(answerer),
                                json={"body": "make deploy"})).json()
    url = f"/api/v1/posts/{question['id']}/best-answer"
    denied = await client.put(url, headers=auth(member), json={"comment_id": answer["id"]})
    assert denied.status_code == 403 and denied.json()["code"] == "cannot-accept-answer"
    by_admin = await client.put(url, headers=auth(admin), json={"comment_id": answer["id"]})
    assert by_admin.status_code == 200 and by_admin.json()["best_answer_id"] == answer["id"]
    assert (await client.put(url, headers=auth(asker), json={"comment_id": answer["id"]})).status_code == 200
    [event] = await outbox_events(session, type="hearth.question.answer_accepted")  # repeating changes nothing
    assert event.payload().answer_author_id == answerer.id and event.payload().accepted_by == admin.id
    not_question = await publish(client, auth(asker))
    assert (await client.put(f"/api/v1/posts/{not_question['id']}/best-answer", headers=auth(asker),
                             json={"comment_id": answer["id"]})).status_code == 409


async def test_praise_names_recipients_with_a_badge(client, session, make_person, auth):
    author, maria = await make_person(), await make_person(email="maria@corp.local")
    post = await publish(client, auth(author), kind="praise", body="Thanks @maria!", badge="team-player")
    assert post["recipients"] == [str(maria.id)] and post["badge"] == "team-player"
    [event] = await outbox_events(session, type="hearth.praise.given")
    assert event.payload().recipients == [maria.id]
    nobody = await client.post("/api/v1/posts", headers=auth(author), json={"kind": "praise", "body": "thanks all"})
    assert nobody.status_code == 422 and nobody.json()["code"] == "invalid-recipients"
    bad_badge = await client.post("/api/v1/posts", headers=auth(author),
                                  json={"kind": "praise", "body": "x", "recipients": [str(maria.id)], "badge": "gold"})
    assert bad_badge.status_code == 422


async def test_praise_in_a_private_group_does_not_tell_outsiders(client, session, make_person, auth):
    author, insider, outsider = await make_person(), await make_person(), await make_person()
    group_id = await make_group(client, auth(author), "private")
    await invite_in(client, auth, author, group_id, insider)
    await publish(client, auth(author), kind="praise", body="great work", group_id=group_id,
                  recipients=[str(insider.id), str(outsider.id)])
    [event] = await outbox_events(session, type="hearth.praise.given")
    assert event.payload().recipients == [insider.id]


async def test_outsider_cannot_accept_answers_on_a_secret_question(client, make_person, auth):
    author, outsider, post = await secret_post(client, auth, make_person)
    response = await client.put(f"/api/v1/posts/{post['id']}/best-answer", headers=auth(outsider),
                                json={"comment_id": post["id"]})
    assert response.status_code == 404
