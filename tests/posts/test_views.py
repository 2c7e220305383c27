from datetime import date, timedelta

from services.posts.content import engagement
from services.posts.content.service import get_readable
from shared.auth import CurrentUser
from shared.testing import outbox_events
from tests.posts.content_helpers import publish, secret_post


async def test_each_person_counts_once_per_post_per_day(client, session, make_person, auth):
    author, alice, bob = await make_person(), await make_person(), await make_person()
    one, two = await publish(client, auth(author)), await publish(client, auth(author))
    batch = {"post_ids": [one["id"], two["id"], one["id"]]}
    assert (await client.post("/api/v1/posts/views", headers=auth(alice), json=batch)).json() == {"recorded": 2}
    assert (await client.post("/api/v1/posts/views", headers=auth(alice), json=batch)).json() == {"recorded": 0}
    await client.post("/api/v1/posts/views", headers=auth(bob), json={"post_ids": [one["id"]]})
    await client.post("/api/v1/posts/views", headers=auth(author), json={"post_ids": [one["id"]]})  # own: not counted
    shown = (await client.get(f"/api/v1/posts/{one['id']}", headers=auth(bob))).json()
    assert shown["seen_by_count"] == 2
    events = [e for e in await outbox_events(session) if e.type == "hearth.post.viewed"]
    assert len(events) == 3 and {e.payload().author_id for e in events} == {author.id}
    assert {e.payload().TOPIC for e in events} == {"activity"}


async def test_a_view_on_a_later_day_is_an_event_but_not_a_new_viewer(client, session, make_person, auth):
    author, reader = await make_person(), await make_person()
    post = await publish(client, auth(author))
    user = CurrentUser(id=reader.id, roles=frozenset(reader.roles), scopes=None)
    today = date.today()
    assert await engagement.record_views(session, post_ids=[post["id"]], user=user, today=today) == 1
    assert await engagement.record_views(session, post_ids=[post["id"]], user=user,
                                         today=today + timedelta(days=1)) == 1
    assert (await get_readable(session, post_id=post["id"], user=user)).seen_by_count == 1
    assert len(await outbox_events(session, type="hearth.post.viewed")) == 2


async def test_views_of_unreadable_posts_are_ignored(client, session, make_person, auth):
    author, outsider, post = await secret_post(client, auth, make_person)
    response = await client.post("/api/v1/posts/views", headers=auth(outsider), json={"post_ids": [post["id"]]})
    assert response.status_code == 200 and response.json() == {"recorded": 0}
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(author))).json()["seen_by_count"] == 0


async def test_view_batches_are_bounded(client, make_person, auth):
    person = await make_person()
    too_many = {"post_ids": [str(person.id)] * 101}
    assert (await client.post("/api/v1/posts/views", headers=auth(person), json=too_many)).status_code == 422
    assert (await client.post("/api/v1/posts/views", headers=auth(person), json={"post_ids": []})).status_code == 422
