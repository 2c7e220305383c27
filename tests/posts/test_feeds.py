from datetime import UTC, datetime, timedelta

from sqlalchemy import event, update

from services.posts.content.models import Post
from tests.posts.content_helpers import follow, invite_in, make_group, publish

LATER = (datetime.now(UTC) + timedelta(days=2)).isoformat()


async def feed(client, headers, path="home", **params):
    response = await client.get(f"/api/v1/feeds/{path}", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def bodies(page):
    return [p["body"] for p in page["items"]]


async def test_home_is_followed_people_joined_groups_announcements_and_own(client, make_person, auth):
    me, friend, stranger = await make_person(), await make_person(), await make_person()
    comms = await make_person(roles=["communications"])
    await follow(client, auth, me, friend)
    group_id = await make_group(client, auth(stranger), "public")
    other_group = await make_group(client, auth(stranger), "public")
    await client.post(f"/api/v1/groups/{group_id}/join", headers=auth(me))
    await publish(client, auth(friend), body="friend")
    await publish(client, auth(stranger), body="stranger")
    await publish(client, auth(stranger), body="in my group", group_id=group_id)
    await publish(client, auth(stranger), body="in another group", group_id=other_group)
    await publish(client, auth(comms), kind="announcement", body="announcement")
    await publish(client, auth(me), body="mine")
    assert bodies(await feed(client, auth(me))) == ["mine", "announcement", "in my group", "friend"]


async def test_pinned_announcements_come_first_while_pinned(client, session, make_person, auth):
    me, friend, comms = await make_person(), await make_person(), await make_person(roles=["communications"])
    await follow(client, auth, me, friend)
    pinned = await publish(client, auth(comms), kind="announcement", body="pinned", pinned_until=LATER)
    for i in range(3):
        await publish(client, auth(friend), body=f"friend {i}")
    first = await feed(client, auth(me), limit=2)
    assert bodies(first) == ["pinned", "friend 2"] and first["items"][0]["pinned"] is True
    rest = await feed(client, auth(me), limit=2, cursor=first["next_cursor"])
    assert bodies(rest) == ["friend 1", "friend 0"]  # the pinned post is not repeated
    await session.execute(update(Post).where(Post.id == pinned["id"])
                          .values(pinned_until=datetime.now(UTC) - timedelta(minutes=1)))
    await session.commit()
    assert bodies(await feed(client, auth(me))) == ["friend 2", "friend 1", "friend 0", "pinned"]


async def test_muted_groups_leave_home_but_not_the_group_feed(client, session, make_person, auth):
    me, owner = await make_person(), await make_person()
    group_id = await make_group(client, auth(owner), "public")
    await client.post(f"/api/v1/groups/{group_id}/join", headers=auth(me))
    await publish(client, auth(owner), body="group news", group_id=group_id)
    assert (await client.put(f"/api/v1/feeds/groups/{group_id}/mute", headers=auth(me))).status_code == 204
    assert bodies(await feed(client, auth(me))) == []
    assert bodies(await feed(client, auth(me), f"groups/{group_id}")) == ["group news"]
    assert (await client.delete(f"/api/v1/feeds/groups/{group_id}/mute", headers=auth(me))).status_code == 204
    assert bodies(await feed(client, auth(me))) == ["group news"]


async def test_followed_tags_reach_home_only_where_readable(client, make_person, auth):
    me, author = await make_person(), await make_person(protected=True)
    other = await make_person()
    assert (await client.put("/api/v1/feeds/tags/%23Launch/follow", headers=auth(me))).status_code == 204
    assert (await client.get("/api/v1/feeds/tags", headers=auth(me))).json() == ["launch"]
    await publish(client, auth(other), body="we #launch today")
    await publish(client, auth(author), body="secret #launch plans")  # protected: not for me
    assert bodies(await feed(client, auth(me))) == ["we #launch today"]
    assert bodies(await feed(client, auth(me), "tags/launch")) == ["we #launch today"]
    assert (await client.get("/api/v1/feeds/tags/bad tag!", headers=auth(me))).status_code == 422


async def test_cursors_are_stable_under_concurrent_inserts(client, make_person, auth):
    me, friend = await make_person(), await make_person()
    await follow(client, auth, me, friend)
    for i in range(5):
        await publish(client, auth(friend), body=f"p{i}")
    first = await feed(client, auth(me), limit=2)
    await publish(client, auth(friend), body="newer")  # arrives while paging
    second = await feed(client, auth(me), limit=2, cursor=first["next_cursor"])
    third = await feed(client, auth(me), limit=2, cursor=second["next_cursor"])
    assert bodies(first) + bodies(second) + bodies(third) == ["p4", "p3", "p2", "p1", "p0"]
    assert third["next_cursor"] is None
    assert bodies(await feed(client, auth(me), limit=1)) == ["newer"]


async def test_top_orders_by_engagement_and_affinity(client, make_person, auth):
    me, friend, fans = await make_person(), await make_person(), [await make_person() for _ in range(3)]
    await follow(client, auth, me, friend)
    popular = await publish(client, auth(friend), body="popular")
    await publish(client, auth(friend), body="quiet")
    for fan in fans:
        await client.put(f"/api/v1/posts/{popular['id']}/reaction", headers=auth(fan), json={"kind": "like"})
    assert bodies(await feed(client, auth(me), order="top")) == ["popular", "quiet"]
    first = await feed(client, auth(me), order="top", limit=1)
    rest = await feed(client, auth(me), order="top", limit=1, cursor=first["next_cursor"])
    assert bodies(first) + bodies(rest) == ["popular", "quiet"] and rest["next_cursor"] is None


async def test_items_carry_author_counts_and_my_state(client, make_person, auth):
    me, friend = await make_person(), await make_person()
    await follow(client, auth, me, friend)
    post = await publish(client, auth(friend), body="state")
    await client.put(f"/api/v1/posts/{post['id']}/reaction", headers=auth(me), json={"kind": "insightful"})
    await client.put(f"/api/v1/posts/{post['id']}/bookmark", headers=auth(me))
    await client.post(f"/api/v1/posts/{post['id']}/comments", headers=auth(me), json={"body": "nice"})
    await client.post("/api/v1/posts/views", headers=auth(me), json={"post_ids": [post["id"]]})
    [item] = (await feed(client, auth(me)))["items"]
    assert item["author"]["id"] == str(friend.id) and item["author"]["display_name"] == friend.display_name
    assert (item["comment_count"], item["reaction_counts"], item["seen_by_count"]) == (1, {"insightful": 1}, 1)
    assert item["my_reaction"] == "insightful" and item["bookmarked"] is True and item["acknowledged"] is None
    assert bodies(await feed(client, auth(me), "bookmarks")) == ["state"]
    assert bodies(await feed(client, auth(friend), "bookmarks")) == []


async def test_company_person_and_group_feeds_follow_the_visibility_rule(client, make_person, auth):
    me, owner, protected = await make_person(), await make_person(), await make_person(protected=True)
    public_group = await make_group(client, auth(owner), "public")
    private_group = await make_group(client, auth(owner), "private")
    secret_group = await make_group(client, auth(owner), "secret")
    await publish(client, auth(owner), body="company")
    await publish(client, auth(owner), body="followers", audience="followers")
    await publish(client, auth(owner), body="public group", group_id=public_group)
    await publish(client, auth(owner), body="private group", group_id=private_group)
    await publish(client, auth(protected), body="protected")
    assert bodies(await feed(client, auth(me), "company")) == ["company"]
    assert bodies(await feed(client, auth(me), f"people/{owner.id}")) == ["public group", "company"]
    assert bodies(await feed(client, auth(me), f"people/{protected.id}")) == []
    assert bodies(await feed(client, auth(me), f"groups/{public_group}")) == ["public group"]
    private = await client.get(f"/api/v1/feeds/groups/{private_group}", headers=auth(me))
    assert private.status_code == 403 and private.json()["code"] == "not-a-group-member"
    for method, path in [("GET", f"groups/{secret_group}"), ("PUT", f"groups/{secret_group}/mute"),
                         ("DELETE", f"groups/{secret_group}/mute")]:
        assert (await client.request(method, f"/api/v1/feeds/{path}", headers=auth(me))).status_code == 404
    missing = await client.get("/api/v1/feeds/people/00000000-0000-0000-0000-000000000000", headers=auth(me))
    assert missing.status_code == 404
    await invite_in(client, auth, owner, private_group, me)
    assert bodies(await feed(client, auth(me), f"groups/{private_group}")) == ["private group"]


async def test_deleted_posts_and_lost_access_leave_every_feed(client, make_person, auth):
    me, owner = await make_person(), await make_person()
    await follow(client, auth, me, owner)
    post = await publish(client, auth(owner), body="soon gone #gone")
    await client.put(f"/api/v1/posts/{post['id']}/bookmark", headers=auth(me))
    await client.delete(f"/api/v1/posts/{post['id']}", headers=auth(owner))
    for path in ["home", "company", f"people/{owner.id}", "tags/gone", "bookmarks"]:
        assert bodies(await feed(client, auth(me), path)) == [], path


async def test_bad_cursor_is_a_problem(client, make_person, auth):
    me = await make_person()
    response = await client.get("/api/v1/feeds/home", headers=auth(me), params={"cursor": "garbage"})
    assert response.status_code == 422 and response.json()["code"] == "invalid-input"
    assert (await client.get("/api/v1/feeds/home?order=best", headers=auth(me))).status_code == 422


async def test_a_feed_page_takes_the_same_number_of_queries_for_5_or_40_posts(client, engine, make_person, auth):
    me, friend, comms = await make_person(), await make_person(), await make_person(roles=["communications"])
    await follow(client, auth, me, friend)
    await publish(client, auth(comms), kind="announcement", body="pinned", pinned_until=LATER, must_read=True)

    async def fill(n):
        for i in range(n):
            post = await publish(client, auth(friend), body=f"post {i}",
                                 **({"kind": "poll", "poll": {"options": ["a", "b"]}} if i % 3 == 0 else {}))
            await client.put(f"/api/v1/posts/{post['id']}/reaction", headers=auth(me), json={"kind": "like"})
            await client.post(f"/api/v1/posts/{post['id']}/comments", headers=auth(friend), json={"body": "c"})

    async def queries(limit, **params):
        statements = []

        def count(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            page = await feed(client, auth(me), limit=limit, **params)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
        assert len(page["items"]) == limit
        return [s for s in statements if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))], page

    await fill(4)
    small, _ = await queries(5)
    await fill(36)
    large, _ = await queries(40)
    assert len(small) == len(large)
    # the token guard, then: the page (ids with the pinned announcements, posts with authors, my state and
    # attachments) in one statement, and for polls: options, my votes, voters
    assert len(large) == 5, large
    assert len([s for s in large if "FROM posts" in s or "FROM poll" in s]) == 4, large
    # a later page: the same, its ids read after the cursor (no pinned part)
    _, first = await queries(20)
    later, _ = await queries(20, cursor=first["next_cursor"])
    assert len(later) == 5, later


async def test_a_first_page_full_of_pinned_announcements_continues_with_the_stream(client, make_person, auth):
    me, friend, comms = await make_person(), await make_person(), await make_person(roles=["communications"])
    await follow(client, auth, me, friend)
    await publish(client, auth(friend), body="older")
    for i in range(2):
        await publish(client, auth(comms), kind="announcement", body=f"pinned {i}", pinned_until=LATER)
    for order in ("recent", "top"):
        first = await feed(client, auth(me), limit=2, order=order)
        assert bodies(first) == ["pinned 1", "pinned 0"] and first["next_cursor"]
        rest = await feed(client, auth(me), limit=2, order=order, cursor=first["next_cursor"])
        assert bodies(rest) == ["older"] and rest["next_cursor"] is None


async def test_home_items_carry_everything_a_post_shows(client, app, tmp_path, make_person, auth):
    """The home page's one statement presents posts exactly as a single post reads: attachments without the
    cover in upload order, poll results for a voter, acknowledgement of a must-read, pinned, my state."""
    me, friend, comms = await make_person(), await make_person(), await make_person(roles=["communications"])
    await follow(client, auth, me, friend)
    original, app.state.settings.storage_url = app.state.settings.storage_url, str(tmp_path / "uploads")
    try:
        files = []
        for name in ("cover.txt", "a.txt", "b.txt"):
            response = await client.post("/api/v1/posts/attachments", headers=auth(friend),
                                         files={"file": (name, b"text", "text/plain")})
            assert response.status_code == 201, response.text
            files.append(response.json()["id"])
    finally:
        app.state.settings.storage_url = original
    article = await publish(client, auth(friend), kind="article", title="Notes", body="read #this",
                            cover_attachment_id=files[0], attachment_ids=files[1:])
    poll = await publish(client, auth(friend), kind="poll", body="which?", poll={"options": ["x", "y"]})
    notice = await publish(client, auth(comms), kind="announcement", body="must read", must_read=True,
                           pinned_until=LATER)
    await client.post(f"/api/v1/posts/{poll['id']}/votes", headers=auth(me),
                      json={"option_ids": [poll["poll"]["options"][1]["id"]]})
    await client.post(f"/api/v1/posts/{notice['id']}/acknowledge", headers=auth(me))
    await client.put(f"/api/v1/posts/{article['id']}/reaction", headers=auth(me), json={"kind": "funny"})
    await client.put(f"/api/v1/posts/{article['id']}/bookmark", headers=auth(me))
    page = await feed(client, auth(me))
    assert [i["id"] for i in page["items"]] == [notice["id"], poll["id"], article["id"]]
    for item in page["items"]:
        single = await client.get(f"/api/v1/posts/{item['id']}", headers=auth(me))
        assert item == single.json()
    pinned, voted, read = page["items"]
    assert pinned["pinned"] is True and pinned["acknowledged"] is True and pinned["must_read"] is True
    assert voted["poll"]["results_visible"] is True and voted["poll"]["my_votes"] == [poll["poll"]["options"][1]["id"]]
    assert [o["votes"] for o in voted["poll"]["options"]] == [0, 1] and voted["poll"]["voters"] == 1
    assert [a["id"] for a in read["attachments"]] == files[1:] and read["cover_attachment_id"] == files[0]
    assert read["attachments"][0] | {"id": None} == {"id": None, "filename": "a.txt", "content_type": "text/plain",
                                                     "size": 4, "width": None, "height": None}
    assert (read["my_reaction"], read["bookmarked"], read["reaction_counts"]) == ("funny", True, {"funny": 1})
    assert read["author"]["id"] == str(friend.id) and read["author"]["handle"] == friend.handle
    assert read["title"] == "Notes" and read["hashtags"] == ["this"] and read["acknowledged"] is None
