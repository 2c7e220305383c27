"""Home timelines under concurrent transactions (migration 0022): a post's fan-out and a follow or unfollow of
its author, each in its own transaction at the same time, leave the timeline as the sources give it.

These tests commit for real on their own connections (the savepoint sessions of the other tests cannot run
two transactions at once) and delete what they made."""

import asyncio
from contextlib import asynccontextmanager
from uuid import uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.posts.groups.models import Group, GroupMember
from services.posts.people import service as people
from services.posts.people.schemas import PersonCreate

POST = text("""
    INSERT INTO posts (id, author_id, kind, body, body_html, audience, mentions, group_mentions, hashtags,
                       recipients, poll_multiple, must_read, ack_version, version, comment_count,
                       reaction_count, seen_by_count, created_at, updated_at)
    VALUES (:id, :author, 'update', 'raced', '<p>raced</p>', 'company', '{}', '{}', '{}', '{}', false, false,
            1, 1, 0, 0, 0, now(), now())""")
ENTRIES = text("SELECT post_id FROM home_entries WHERE person_id = :p")


@asynccontextmanager
async def committed_people(engine, n=2):
    """`n` people, committed; everything of theirs deleted afterwards."""
    made = []
    async with async_sessionmaker(engine, expire_on_commit=False, info={"service": "posts"})() as s:
        for _ in range(n):
            n = uuid4().hex[:12]
            made.append(await people.create(s, data=PersonCreate(
                email=f"race-{n}@corp.local", display_name=f"Race {n}", password="correct-horse"), actor=None))
        await s.commit()
    try:
        yield made
    finally:
        ids = {"ids": [str(p.id) for p in made]}
        async with engine.begin() as c:
            for statement in ("DELETE FROM home_entries WHERE person_id = ANY(CAST(:ids AS uuid[]))",
                              "DELETE FROM home_timelines WHERE person_id = ANY(CAST(:ids AS uuid[]))",
                              "DELETE FROM follows WHERE follower_id = ANY(CAST(:ids AS uuid[])) OR followee_id = ANY(CAST(:ids AS uuid[]))",
                              "DELETE FROM posts WHERE author_id = ANY(CAST(:ids AS uuid[]))",
                              "DELETE FROM outbox WHERE key = ANY(CAST(:ids AS text[]))",
                              "DELETE FROM people WHERE id = ANY(CAST(:ids AS uuid[]))"):
                await c.execute(text(statement), ids)


async def race(engine, first, second) -> None:
    """`first` runs in one transaction, then `second` in another while the first is still open; the first
    commits, then the second (which may have waited for it)."""
    async with engine.connect() as a, engine.connect() as b:
        await a.begin()
        await b.begin()
        await first(a)
        waiting = asyncio.ensure_future(second(b))
        await asyncio.sleep(0.3)  # ordering only: give the second the chance to block on the first
        await a.commit()
        await waiting
        await b.commit()


async def entries(engine, person) -> set:
    async with engine.connect() as c:
        return {r[0] for r in await c.execute(ENTRIES, {"p": person.id})}


async def test_a_post_and_a_follow_of_its_author_at_the_same_time(engine):
    """Either order: the followed person's post ends up in my (complete) timeline."""
    async with committed_people(engine) as (me, friend):
        posted = [uuid4(), uuid4()]
        follow = text("INSERT INTO follows (follower_id, followee_id, created_at) VALUES (:me, :friend, now())")
        unfollow = text("DELETE FROM follows WHERE follower_id = :me AND followee_id = :friend")
        ids = {"me": me.id, "friend": friend.id}

        await race(engine, lambda c: c.execute(POST, {"id": posted[0], "author": friend.id}),
                   lambda c: c.execute(follow, ids))
        assert posted[0] in await entries(engine, me)

        async with engine.begin() as c:
            await c.execute(unfollow, ids)
        await race(engine, lambda c: c.execute(follow, ids),
                   lambda c: c.execute(POST, {"id": posted[1], "author": friend.id}))
        assert posted[1] in await entries(engine, me)


async def test_an_unfollow_and_a_post_of_the_followee_at_the_same_time(engine):
    """The post's fan-out, still uncommitted when I unfollow, does not leave it in my timeline."""
    async with committed_people(engine) as (me, friend):
        async with engine.begin() as c:
            await c.execute(text("INSERT INTO follows (follower_id, followee_id, created_at) "
                                 "VALUES (:me, :friend, now())"), {"me": me.id, "friend": friend.id})
        post = uuid4()
        await race(engine, lambda c: c.execute(POST, {"id": post, "author": friend.id}),
                   lambda c: c.execute(text("DELETE FROM follows WHERE follower_id = :me AND followee_id = :friend"),
                                       {"me": me.id, "friend": friend.id}))
        assert post not in await entries(engine, me)


BULK = text("""
    INSERT INTO posts (id, author_id, kind, body, body_html, audience, mentions, group_mentions, hashtags,
                       recipients, poll_multiple, must_read, ack_version, version, comment_count,
                       reaction_count, seen_by_count, created_at, updated_at)
    SELECT gen_random_uuid(), :author, 'update', 'bulk', '<p>bulk</p>', 'company', '{}', '{}', '{}', '{}', false,
           false, 1, 1, 0, 0, 0, clock_timestamp(), now()
    FROM generate_series(1, 20)""")


async def test_two_bulk_inserts_fanning_out_to_the_same_people_at_once(engine):
    """Two statements of 20 posts each (both trim every recipient) by two people that the same two follow, run
    at the same time three times over: no deadlock, and every post is in both timelines."""
    async with committed_people(engine, 4) as (me, you, a, b):
        async with engine.begin() as c:
            for follower in (me, you):
                for followee in (a, b):
                    await c.execute(text("INSERT INTO follows (follower_id, followee_id, created_at) "
                                         "VALUES (:f, :e, now())"), {"f": follower.id, "e": followee.id})

        async def insert(author):
            async with engine.begin() as c:
                await c.execute(BULK, {"author": author.id})

        for _ in range(3):
            await asyncio.gather(insert(a), insert(b))
        async with engine.connect() as c:
            posts = {r[0] for r in await c.execute(text("SELECT id FROM posts WHERE author_id IN (:a, :b)"),
                                                   {"a": a.id, "b": b.id})}
        assert len(posts) == 120
        for person in (me, you):
            assert await entries(engine, person) == posts


GROUP_POST = text("""
    INSERT INTO posts (id, author_id, group_id, kind, body, body_html, audience, mentions, group_mentions,
                       hashtags, recipients, poll_multiple, must_read, ack_version, version, comment_count,
                       reaction_count, seen_by_count, created_at, updated_at)
    VALUES (:id, :author, :g, 'update', 'raced', '<p>raced</p>', 'group', '{}', '{}', '{}', '{}', false, false,
            1, 1, 0, 0, 0, now(), now())""")


async def test_a_group_post_and_a_join_or_an_unmute_at_the_same_time(engine):
    """The group's source lock: a post racing my join, then one racing my unmute, end up in my timeline; one
    racing my mute does not stay there."""
    async with committed_people(engine) as (me, owner):
        async with async_sessionmaker(engine, expire_on_commit=False)() as s:
            group = Group(name="raced group", visibility="public", created_by=owner.id)
            s.add(group)
            await s.flush()
            s.add(GroupMember(group_id=group.id, person_id=owner.id, role="owner"))
            await s.commit()
        ids = {"me": me.id, "g": group.id}
        posts = [uuid4(), uuid4(), uuid4()]

        def post(n):
            return lambda c: c.execute(GROUP_POST, {"id": posts[n], "author": owner.id, "g": group.id})

        def run(sql):
            return lambda c: c.execute(text(sql), ids)

        try:
            await race(engine, post(0), run("INSERT INTO group_members VALUES (:g, :me, 'member', now())"))
            assert posts[0] in await entries(engine, me)
            await race(engine, post(1), run("INSERT INTO group_mutes VALUES (:me, :g, now())"))
            assert posts[1] not in await entries(engine, me)
            await race(engine, run("DELETE FROM group_mutes WHERE person_id = :me AND group_id = :g"), post(2))
            assert set(posts) <= await entries(engine, me)
        finally:
            async with engine.begin() as c:
                for sql in ("DELETE FROM home_entries WHERE post_id IN (SELECT id FROM posts WHERE group_id = :g)",
                            "DELETE FROM posts WHERE group_id = :g", "DELETE FROM group_mutes WHERE group_id = :g",
                            "DELETE FROM group_members WHERE group_id = :g", "DELETE FROM groups WHERE id = :g"):
                    await c.execute(text(sql), ids)
