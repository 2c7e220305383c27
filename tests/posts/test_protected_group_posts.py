"""One rule for protected accounts in groups: a group post's audience is the group, not the author's followers."""

from sqlalchemy import update

from services.posts.people.models import Person


async def test_a_protected_accounts_post_in_a_public_group_is_readable_by_the_groups_readers(
        client, make_person, auth):
    author, stranger = await make_person(protected=True), await make_person(email="stranger@corp.local")
    group = await client.post("/api/v1/groups", headers=auth(author), json={"name": "Open", "visibility": "public"})
    post = await client.post("/api/v1/posts", headers=auth(author),
                             json={"group_id": group.json()["id"], "body": "for the group @stranger"})
    assert post.status_code == 201, post.text
    read = await client.get(f"/api/v1/posts/{post.json()['id']}", headers=auth(stranger))
    assert read.status_code == 200  # not a follower, but a reader of the public group


async def test_a_protected_accounts_post_outside_groups_stays_followers_only(client, make_person, auth):
    author, stranger = await make_person(protected=True), await make_person()
    post = await client.post("/api/v1/posts", headers=auth(author), json={"body": "only followers", "audience": "company"})
    assert post.status_code == 201, post.text
    assert (await client.get(f"/api/v1/posts/{post.json()['id']}", headers=auth(stranger))).status_code == 404


async def test_deep_management_chains_come_back_nearest_first_and_stop_at_cycles(session, make_person):
    from services.posts.people import service as people
    top = await make_person(display_name="Top")
    middle = await make_person(display_name="Middle", manager_id=top.id)
    low = await make_person(display_name="Low", manager_id=middle.id)
    assert [p.display_name for p in await people.management_chain(session, person=low)] == ["Middle", "Top"]
    await session.execute(update(Person).where(Person.id == top.id).values(manager_id=low.id))  # bad data
    await session.commit()
    assert [p.display_name for p in await people.management_chain(session, person=low)] == ["Middle", "Top"]
