"""The materialized home timeline (migration 0018_home_timeline): its triggers keep it, home reads it, and
every page it serves is the page home's sources give (the sources are read when it cannot serve one)."""

from uuid import UUID

from sqlalchemy import text

from tests.posts.content_helpers import follow, invite_in, make_group, publish
from tests.posts.test_feeds import bodies, feed

CAP = 400  # HOME_CAP of the migration


async def entries(session, person) -> list[UUID]:
    """The post ids of `person`'s timeline above its horizon, newest first."""
    rows = await session.execute(text("""
        SELECT e.post_id FROM home_entries e JOIN home_timelines h ON h.person_id = e.person_id
        WHERE e.person_id = :p AND (h.horizon_at IS NULL OR (e.created_at, e.post_id) > (h.horizon_at, h.horizon_id))
        ORDER BY e.created_at DESC, e.post_id DESC"""), {"p": person.id})
    return [str(r[0]) for r in rows]


async def from_sources(client, session, headers, person, **params) -> dict:
    """The same home page read from the sources: without a timeline row home does not use the timeline."""
    row = (await session.execute(text("DELETE FROM home_timelines WHERE person_id = :p RETURNING *"),
                                 {"p": person.id})).one()
    await session.commit()
    try:
        return await feed(client, headers, **params)
    finally:
        await session.execute(text("INSERT INTO home_timelines VALUES (:p, :at, :id)"),
                              {"p": row.person_id, "at": row.horizon_at, "id": row.horizon_id})
        await session.commit()


async def bulk_posts(session, authors, n: int) -> None:
    """`n` posts in one INSERT, newest first `bulk 1`..`bulk n` a minute apart, by `authors` in turn."""
    await session.execute(text("""
        INSERT INTO posts (id, author_id, kind, body, body_html, audience, mentions, group_mentions, hashtags,
                           recipients, poll_multiple, must_read, ack_version, version, comment_count,
                           reaction_count, seen_by_count, created_at, updated_at)
        SELECT gen_random_uuid(), (CAST(:authors AS uuid[]))[1 + i % cardinality(CAST(:authors AS uuid[]))],
               'update', 'bulk ' || i, '<p>bulk ' || i || '</p>', 'company', '{}', '{}', '{}', '{}', false, false,
               1, 1, 0, 0, 0, now() - (i || ' minutes')::interval, now()
        FROM generate_series(1, :n) i"""), {"authors": [a.id for a in authors], "n": n})


async def every_page(client, headers, limit: int) -> list[str]:
    seen, cursor = [], None
    while True:
        page = await feed(client, headers, limit=limit, **({"cursor": cursor} if cursor else {}))
        seen += bodies(page)
        if not (cursor := page["next_cursor"]):
            return seen


async def test_a_new_person_has_a_complete_empty_timeline(session, make_person):
    me = await make_person()
    row = (await session.execute(text("SELECT horizon_at FROM home_timelines WHERE person_id = :p"),
                                 {"p": me.id})).one()
    assert row.horizon_at is None and await entries(session, me) == []


async def test_follow_merges_the_followees_posts_in_and_unfollow_takes_them_out(client, session, make_person, auth):
    me, friend, owner = await make_person(), await make_person(), await make_person()
    group_id = await make_group(client, auth(owner), "public")
    await client.post(f"/api/v1/groups/{group_id}/join", headers=auth(friend))
    older = [await publish(client, auth(friend), body=f"before {i}") for i in range(3)]
    in_group = await publish(client, auth(friend), body="friend in a group I did not join", group_id=group_id)
    await follow(client, auth, me, friend)
    assert await entries(session, me) == [p["id"] for p in reversed(older)]
    newer = await publish(client, auth(friend), body="after")
    mine = await publish(client, auth(me), body="mine")
    assert await entries(session, me) == [mine["id"], newer["id"], *[p["id"] for p in reversed(older)]]
    page = await feed(client, auth(me))
    assert bodies(page) == ["mine", "after", "before 2", "before 1", "before 0"]
    assert in_group["id"] not in [i["id"] for i in page["items"]]
    assert page["items"] == (await from_sources(client, session, auth(me), me))["items"]
    assert (await client.delete(f"/api/v1/people/{friend.id}/follow", headers=auth(me))).status_code == 204
    assert await entries(session, me) == [mine["id"]]
    assert bodies(await feed(client, auth(me))) == ["mine"]


async def test_join_leave_mute_and_unmute_keep_the_groups_posts_in_step(client, session, make_person, auth):
    me, owner = await make_person(), await make_person()
    group_id = await make_group(client, auth(owner), "public")
    before = await publish(client, auth(owner), body="before I joined", group_id=group_id)
    await client.post(f"/api/v1/groups/{group_id}/join", headers=auth(me))
    after = await publish(client, auth(owner), body="after I joined", group_id=group_id)
    mine = await publish(client, auth(me), body="my group post", group_id=group_id)
    assert await entries(session, me) == [mine["id"], after["id"], before["id"]]
    assert (await client.put(f"/api/v1/feeds/groups/{group_id}/mute", headers=auth(me))).status_code == 204
    assert await entries(session, me) == [mine["id"]]  # my own posts stay mine
    await publish(client, auth(owner), body="while muted", group_id=group_id)
    assert bodies(await feed(client, auth(me))) == ["my group post"]
    assert (await client.delete(f"/api/v1/feeds/groups/{group_id}/mute", headers=auth(me))).status_code == 204
    assert bodies(await feed(client, auth(me))) == ["while muted", "my group post", "after I joined",
                                                    "before I joined"]
    assert len(await entries(session, me)) == 4
    assert (await client.post(f"/api/v1/groups/{group_id}/leave", headers=auth(me))).status_code == 204
    assert await entries(session, me) == [mine["id"]]
    assert bodies(await feed(client, auth(me))) == ["my group post"]


async def test_an_entry_is_a_candidate_never_a_permission(client, session, make_person, auth):
    """Home reads its entries (a stranger's public post put there shows) and applies the visibility rule to
    each: a secret group's post, a protected account's or a deleted one never shows, entry or not."""
    me, stranger, owner = await make_person(), await make_person(), await make_person()
    protected = await make_person(protected=True)
    secret = await make_group(client, auth(owner), "secret")
    hidden = await publish(client, auth(owner), body="secret plans", group_id=secret)
    guarded = await publish(client, auth(protected), body="for followers")
    gone = await publish(client, auth(stranger), body="deleted")
    shown = await publish(client, auth(stranger), body="public, put in by hand")
    await client.delete(f"/api/v1/posts/{gone['id']}", headers=auth(stranger))
    for post in (hidden, guarded, gone, shown):
        await session.execute(text("""INSERT INTO home_entries SELECT :p, created_at, id FROM posts
                                      WHERE id = :post"""), {"p": me.id, "post": post["id"]})
    await session.commit()
    assert bodies(await feed(client, auth(me))) == ["public, put in by hand"]
    assert (await client.get(f"/api/v1/posts/{hidden['id']}", headers=auth(me))).status_code == 404


async def test_deleted_posts_leave_every_timeline(client, session, make_person, auth):
    me, friend, owner = await make_person(), await make_person(), await make_person()
    await follow(client, auth, me, friend)
    group_id = await make_group(client, auth(owner), "private")
    await invite_in(client, auth, owner, group_id, me)
    posts = [await publish(client, auth(friend), body="friend's"),
             await publish(client, auth(owner), body="group's", group_id=group_id)]
    assert len(await entries(session, me)) == 2
    for post, author in zip(posts, (friend, owner)):
        assert (await client.delete(f"/api/v1/posts/{post['id']}", headers=auth(author))).status_code == 204
    assert await entries(session, me) == [] and await entries(session, owner) == []
    assert bodies(await feed(client, auth(me))) == []


async def test_paging_past_the_cap_reads_the_sources_with_no_gap_or_repeat(client, session, make_person, auth):
    """CAP + 60 posts of two followed people, interleaved, in one INSERT; the timeline keeps the newest CAP (its
    horizon is set); paging the whole home in pages of 50 gives every post once, newest first — the pages below the
    horizon come from the sources — and the first pages are the ones the sources give."""
    me, a, b = await make_person(), await make_person(), await make_person()
    await follow(client, auth, me, a)
    await follow(client, auth, me, b)
    await bulk_posts(session, [a, b, b], CAP + 60)
    await session.commit()  # one statement of more than 16 posts trims every recipient's timeline
    horizon = (await session.execute(text("SELECT horizon_at FROM home_timelines WHERE person_id = :p"),
                                     {"p": me.id})).scalar_one()
    assert horizon is not None and len(await entries(session, me)) == CAP
    seen, cursor, pages = [], None, 0
    while True:
        page = await feed(client, auth(me), limit=50, **({"cursor": cursor} if cursor else {}))
        seen += bodies(page)
        pages += 1
        if pages == 2:
            await publish(client, auth(a), body="arrives while paging")  # never enters this pagination
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [f"bulk {i}" for i in range(1, CAP + 61)]
    first = await feed(client, auth(me), limit=50)
    assert first["items"] == (await from_sources(client, session, auth(me), me, limit=50))["items"]


async def test_following_someone_with_more_posts_than_the_cap_keeps_home_whole(client, session, make_person, auth):
    """The merge takes the followee's newest CAP + 1 posts and trims back to CAP (the horizon below them):
    paging the whole home still gives every post once, the older ones from the sources."""
    me, prolific = await make_person(), await make_person()
    await bulk_posts(session, [prolific], CAP + 30)
    await session.commit()
    await follow(client, auth, me, prolific)
    horizon = (await session.execute(text("SELECT horizon_at FROM home_timelines WHERE person_id = :p"),
                                     {"p": me.id})).scalar_one()
    assert horizon is not None and len(await entries(session, me)) == CAP
    assert await every_page(client, auth(me), 100) == [f"bulk {i}" for i in range(1, CAP + 31)]
