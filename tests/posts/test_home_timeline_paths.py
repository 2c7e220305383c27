"""Home (recent) through the materialized timeline is home from the sources, whatever path changed who I follow,
which groups I am in or what I muted (migrations 0018, 0021, 0022). Each check pages the whole home both ways —
the sources by taking my timeline row away for the read (`from_sources`) — and asserts what it should hold."""

from types import SimpleNamespace
from uuid import UUID

from sqlalchemy import text

from tests.posts.content_helpers import follow, invite_in, make_group, publish
from tests.posts.test_feeds import bodies, feed
from tests.posts.test_home_timeline import CAP, bulk_posts, entries
from tests.posts.test_scim import GROUP, USER, patch

SCIM = "/scim/v2"


async def horizon(session, person):
    return (await session.execute(text("SELECT horizon_at FROM home_timelines WHERE person_id = :p"),
                                  {"p": person.id})).one().horizon_at


async def home_both_ways(client, session, auth, person, limit=3, **params) -> list[str]:
    """Every page of `person`'s home read through the timeline, asserted equal (items, order, pages) to every
    page read from the sources; the bodies, newest first."""
    async def pages():
        seen, cursor = [], None
        while True:
            page = await feed(client, auth(person), limit=limit, **params, **({"cursor": cursor} if cursor else {}))
            seen.append([(i["id"], i["body"]) for i in page["items"]])
            if not (cursor := page["next_cursor"]):
                return seen

    through_timeline = await pages()
    row = (await session.execute(text("DELETE FROM home_timelines WHERE person_id = :p RETURNING *"),
                                 {"p": person.id})).one()
    await session.commit()
    try:
        from_sources = await pages()
    finally:
        await session.execute(text("INSERT INTO home_timelines VALUES (:p, :at, :id)"),
                              {"p": row.person_id, "at": row.horizon_at, "id": row.horizon_id})
        await session.commit()
    assert through_timeline == from_sources
    return [body for page in through_timeline for _, body in page]


async def test_follow_requests_approved_and_a_protected_account_switching(client, session, make_person, auth):
    owner, me, late = await make_person(protected=True), await make_person(), await make_person()
    await publish(client, auth(owner), body="for followers 1")
    asked = (await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(me))).json()
    assert asked["state"] == "requested"
    assert await home_both_ways(client, session, auth, me) == []
    approved = await client.post(f"/api/v1/people/me/follow-requests/{asked['request_id']}/approve",
                                 headers=auth(owner))
    assert approved.status_code == 204
    await publish(client, auth(owner), body="for followers 2")
    assert await home_both_ways(client, session, auth, me) == ["for followers 2", "for followers 1"]
    # Going public turns pending requests into follows (one INSERT ... SELECT): merged like any follow.
    assert (await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(late))).json()["state"] == "requested"
    assert (await client.patch("/api/v1/people/me", headers=auth(owner), json={"protected": False})).status_code == 200
    assert await home_both_ways(client, session, auth, late) == ["for followers 2", "for followers 1"]
    assert (await client.patch("/api/v1/people/me", headers=auth(owner), json={"protected": True})).status_code == 200
    await publish(client, auth(owner), body="protected again")
    for person in (me, late):
        assert await home_both_ways(client, session, auth, person) == ["protected again", "for followers 2",
                                                                       "for followers 1"]
    assert await horizon(session, me) is None  # the timeline served it (complete), not a fallback


async def test_group_membership_through_every_path(client, session, make_person, auth):
    me, owner = await make_person(), await make_person()
    private = await make_group(client, auth(owner), "private")
    await publish(client, auth(owner), body="private before")
    await publish(client, auth(owner), body="in private before", group_id=private)
    asked = (await client.post(f"/api/v1/groups/{private}/join", headers=auth(me))).json()
    assert await home_both_ways(client, session, auth, me) == []
    assert (await client.post(f"/api/v1/groups/{private}/join-requests/{asked['request_id']}/approve",
                              headers=auth(owner))).status_code == 204
    assert await home_both_ways(client, session, auth, me) == ["in private before"]

    secret = await make_group(client, auth(owner), "secret")
    await publish(client, auth(owner), body="in secret", group_id=secret)
    await invite_in(client, auth, owner, secret, me)
    await publish(client, auth(me), body="mine in secret", group_id=secret)
    assert await home_both_ways(client, session, auth, me) == ["mine in secret", "in secret", "in private before"]
    # Removed by an admin: the group's posts go, my own post in it stays mine.
    assert (await client.delete(f"/api/v1/groups/{secret}/members/{me.id}", headers=auth(owner))).status_code == 204
    assert await home_both_ways(client, session, auth, me) == ["mine in secret", "in private before"]

    # Archived, then turned secret: members keep seeing its posts.
    assert (await client.post(f"/api/v1/groups/{private}/archive", headers=auth(owner))).status_code == 200
    assert (await client.post(f"/api/v1/groups/{private}/unarchive", headers=auth(owner))).status_code == 200
    assert (await client.patch(f"/api/v1/groups/{private}", headers=auth(owner),
                               json={"visibility": "secret"})).status_code == 200
    await publish(client, auth(owner), body="in private turned secret", group_id=private)
    assert await home_both_ways(client, session, auth, me) == ["in private turned secret", "mine in secret",
                                                               "in private before"]
    # Going public lets pending requesters in (one INSERT ... SELECT into group_members): merged like a join.
    opening = await make_group(client, auth(owner), "private")
    await publish(client, auth(owner), body="in the group going public", group_id=opening)
    assert (await client.post(f"/api/v1/groups/{opening}/join", headers=auth(me))).json()["state"] == "requested"
    assert (await client.patch(f"/api/v1/groups/{opening}", headers=auth(owner),
                               json={"visibility": "public"})).status_code == 200
    assert (await home_both_ways(client, session, auth, me))[0] == "in the group going public"
    assert await horizon(session, me) is None


async def test_scim_group_membership_and_archival(client, session, make_person, auth, settings):
    scim = {"Authorization": f"Bearer {settings.scim_token}", "Content-Type": "application/scim+json"}
    me, colleague = await make_person(), await make_person()
    created = await client.post(f"{SCIM}/Groups", headers=scim, json={
        "schemas": [GROUP], "displayName": "Timeline SCIM", "externalId": "home-g1",
        "members": [{"value": str(colleague.id)}]})
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]
    await publish(client, auth(colleague), body="scim group before me", group_id=group_id)
    added = await client.patch(f"{SCIM}/Groups/{group_id}", headers=scim, json=patch(
        {"op": "add", "path": "members", "value": [{"value": str(me.id)}]}))
    assert added.status_code in (200, 204), added.text
    await publish(client, auth(colleague), body="scim group after me", group_id=group_id)
    assert await home_both_ways(client, session, auth, me) == ["scim group after me", "scim group before me"]
    removed = await client.patch(f"{SCIM}/Groups/{group_id}", headers=scim, json=patch(
        {"op": "remove", "path": f'members[value eq "{me.id}"]'}))
    assert removed.status_code in (200, 204), removed.text
    assert await home_both_ways(client, session, auth, colleague) == ["scim group after me", "scim group before me"]
    assert await home_both_ways(client, session, auth, me) == []
    assert (await client.delete(f"{SCIM}/Groups/{group_id}", headers=scim)).status_code == 204  # archived
    assert await home_both_ways(client, session, auth, colleague) == ["scim group after me", "scim group before me"]


async def test_people_created_deactivated_and_reactivated_by_scim(client, session, make_person, auth, settings):
    scim = {"Authorization": f"Bearer {settings.scim_token}", "Content-Type": "application/scim+json"}
    me = await make_person()
    response = await client.post(f"{SCIM}/Users", headers=scim, json={
        "schemas": [USER], "userName": "timeline.new@corp.local", "displayName": "New Hire", "active": True,
        "emails": [{"primary": True, "value": "timeline.new@corp.local", "type": "work"}]})
    assert response.status_code == 201, response.text
    hire = SimpleNamespace(id=UUID(response.json()["id"]), roles=["member"])
    assert await horizon(session, hire) is None and await entries(session, hire) == []  # complete, empty
    await follow(client, auth, hire, me)
    await publish(client, auth(me), body="welcome")
    assert await home_both_ways(client, session, auth, hire) == ["welcome"]
    await follow(client, auth, me, hire)
    await publish(client, auth(hire), body="hello all")
    for active in (False, True):
        changed = await client.patch(f"{SCIM}/Users/{hire.id}", headers=scim, json=patch(
            {"op": "replace", "value": {"active": active}}))
        assert changed.status_code == 200, changed.text
        assert await home_both_ways(client, session, auth, me) == ["hello all", "welcome"]


async def test_muted_groups_followed_people_in_groups_and_my_posts_in_a_group_i_left(client, session, make_person,
                                                                                    auth):
    """The old path's rules: a followed person's posts count outside groups only (so one in a group I muted
    or did not join is not in home through the follow), my own posts always are."""
    me, friend, owner = await make_person(), await make_person(), await make_person()
    await follow(client, auth, me, friend)
    joined, elsewhere = await make_group(client, auth(owner), "public"), await make_group(client, auth(owner), "public")
    for person in (me, friend):
        await client.post(f"/api/v1/groups/{joined}/join", headers=auth(person))
    await client.post(f"/api/v1/groups/{elsewhere}/join", headers=auth(friend))
    assert (await client.put(f"/api/v1/feeds/groups/{joined}/mute", headers=auth(me))).status_code == 204
    await publish(client, auth(friend), body="friend in the muted group", group_id=joined)
    await publish(client, auth(friend), body="friend in a group I am not in", group_id=elsewhere)
    await publish(client, auth(friend), body="friend outside groups")
    await publish(client, auth(me), body="mine in the muted group", group_id=joined)
    assert await home_both_ways(client, session, auth, me) == ["mine in the muted group", "friend outside groups"]
    assert (await client.post(f"/api/v1/groups/{joined}/leave", headers=auth(me))).status_code == 204
    assert await home_both_ways(client, session, auth, me) == ["mine in the muted group", "friend outside groups"]


async def test_follow_unfollow_and_follow_again_past_the_cap(client, session, make_person, auth):
    me, prolific, other = await make_person(), await make_person(), await make_person()
    await follow(client, auth, me, other)
    await bulk_posts(session, [prolific], CAP + 30)
    await session.commit()
    await publish(client, auth(other), body="other")
    await follow(client, auth, me, prolific)
    assert (await client.delete(f"/api/v1/people/{prolific.id}/follow", headers=auth(me))).status_code == 204
    await follow(client, auth, me, prolific)
    whole = ["other", *(f"bulk {i}" for i in range(1, CAP + 31))]
    assert await horizon(session, me) is not None
    assert await home_both_ways(client, session, auth, me, limit=100) == whole
    assert (await client.delete(f"/api/v1/people/{prolific.id}/follow", headers=auth(me))).status_code == 204
    assert await home_both_ways(client, session, auth, me) == ["other"]
    await follow(client, auth, me, prolific)
    assert await home_both_ways(client, session, auth, me, limit=100) == whole


async def test_a_bulk_insert_into_a_group_with_a_muted_member(client, session, make_person, auth):
    """More than 16 posts in one INSERT (0021's set-based fan-out and trim) across a group and outside it."""
    me, muter, owner = await make_person(), await make_person(), await make_person()
    group_id = await make_group(client, auth(owner), "public")
    for person in (me, muter):
        await client.post(f"/api/v1/groups/{group_id}/join", headers=auth(person))
        await follow(client, auth, person, owner)
    await client.put(f"/api/v1/feeds/groups/{group_id}/mute", headers=auth(muter))
    await session.execute(text("""
        INSERT INTO posts (id, author_id, group_id, kind, body, body_html, audience, mentions, group_mentions,
                           hashtags, recipients, poll_multiple, must_read, ack_version, version, comment_count,
                           reaction_count, seen_by_count, created_at, updated_at)
        SELECT gen_random_uuid(), :owner, CASE WHEN i % 2 = 0 THEN CAST(:g AS uuid) END, 'update', 'bulk ' || i,
               '<p>bulk</p>', CASE WHEN i % 2 = 0 THEN 'group' ELSE 'company' END, '{}', '{}', '{}', '{}', false,
               false, 1, 1, 0, 0, 0, now() - (i || ' minutes')::interval, now()
        FROM generate_series(1, 40) i"""), {"owner": owner.id, "g": group_id})
    await session.commit()
    assert await home_both_ways(client, session, auth, me, limit=7) == [f"bulk {i}" for i in range(1, 41)]
    assert await home_both_ways(client, session, auth, muter, limit=7) == [f"bulk {i}" for i in range(1, 41, 2)]
    assert await horizon(session, me) is None


async def test_the_horizon_rising_between_pages_leaves_no_gap_and_no_repeat(client, session, make_person, auth):
    """Page 1 comes from the timeline; then more than the cap of newer posts arrive and trim it (the horizon
    rises above everything page 1 showed); the next pages come from the sources, continuing exactly."""
    me, friend = await make_person(), await make_person()
    await follow(client, auth, me, friend)
    await bulk_posts(session, [friend], 30)
    await session.commit()
    first = await feed(client, auth(me), limit=10)
    seen = bodies(first)
    await session.execute(text("""
        INSERT INTO posts (id, author_id, kind, body, body_html, audience, mentions, group_mentions, hashtags,
                           recipients, poll_multiple, must_read, ack_version, version, comment_count,
                           reaction_count, seen_by_count, created_at, updated_at)
        SELECT gen_random_uuid(), :a, 'update', 'later ' || i, '<p>later</p>', 'company', '{}', '{}', '{}', '{}',
               false, false, 1, 1, 0, 0, 0, now() + (i || ' seconds')::interval, now()
        FROM generate_series(1, :n) i"""), {"a": friend.id, "n": CAP + 20})
    await session.commit()
    assert len(await entries(session, me)) == CAP  # the newest CAP "later" posts: the horizon is above page 1
    cursor = first["next_cursor"]
    while cursor:
        page = await feed(client, auth(me), limit=10, cursor=cursor)
        seen += bodies(page)
        cursor = page["next_cursor"]
    assert seen == [f"bulk {i}" for i in range(1, 31)]


async def test_order_top_does_not_read_the_timeline(client, session, make_person, auth):
    me, friend = await make_person(), await make_person()
    await follow(client, auth, me, friend)
    for i in range(5):
        await publish(client, auth(friend), body=f"top {i}")
    await session.execute(text("DELETE FROM home_entries WHERE person_id = :p"), {"p": me.id})
    await session.commit()  # an emptied timeline changes nothing for top
    assert sorted(await home_both_ways(client, session, auth, me, limit=2, order="top")) == [
        f"top {i}" for i in range(5)]


async def test_a_post_deleted_by_a_moderator_and_an_edited_one(client, session, make_person, auth):
    """Edits change neither a post's group nor its audience (nothing does; no path restores a deleted post):
    an edited post stays where it was, one a moderator deleted leaves home both ways."""
    me, friend = await make_person(), await make_person()
    moderator = await make_person(roles=["moderator"])
    await follow(client, auth, me, friend)
    kept, removed = (await publish(client, auth(friend), body="kept"), await publish(client, auth(friend), body="bad"))
    edited = await client.patch(f"/api/v1/posts/{kept['id']}", headers=auth(friend), json={"body": "kept, edited"})
    assert edited.status_code == 200, edited.text
    assert (await client.delete(f"/api/v1/posts/{removed['id']}", headers=auth(moderator))).status_code == 204
    assert await home_both_ways(client, session, auth, me) == ["kept, edited"]
    assert await entries(session, me) == [kept["id"]]
