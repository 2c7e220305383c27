"""Hashtag counts for typeahead (`search_tags`, kept by triggers on posts and people) and the rule that
a tag only on posts the caller cannot read is never suggested."""

from sqlalchemy import select, text

from services.posts.content import service as content
from services.posts.content.models import Post
from services.posts.search.models import search_tags
from tests.posts.test_search import (
    READABLE,
    follow,
    hidden_world,  # noqa: F401 (the fixture, shared)
    make_group,
    protect,
    publish,
)


async def counts(sessionmaker, prefix: str) -> dict[str, tuple[int, int]]:
    async with sessionmaker() as s:
        rows = await s.execute(select(search_tags).where(search_tags.c.tag.like(prefix + "%")))
        return {r.tag: (r.open_posts, r.restricted_posts) for r in rows if r.open_posts or r.restricted_posts}


async def suggested(client, auth, person, q: str) -> dict[str, int]:
    response = await client.get("/api/v1/search/suggest", headers=auth(person), params={"q": q, "limit": 10})
    assert response.status_code == 200, response.text
    return {t["tag"]: t["posts"] for t in response.json()["tags"]}


async def test_counts_follow_publishing_editing_and_deleting(client, sessionmaker, make_person, auth):
    author, member = await make_person(), await make_person()
    group = await make_group(client, auth, author, "public", members=[member])
    first = await publish(client, auth, author, "Launch day #qxalpha #qxbeta")
    await publish(client, auth, author, "More #qxbeta news")
    await publish(client, auth, author, "Inside the group #qxbeta", group_id=group)
    await publish(client, auth, author, "For followers #qxgamma", audience="followers")
    assert await counts(sessionmaker, "qx") == {"qxalpha": (1, 0), "qxbeta": (2, 1), "qxgamma": (0, 1)}
    edited = await client.patch(f"/api/v1/posts/{first}", headers=auth(author), json={"body": "Launch #qxgamma"})
    assert edited.status_code == 200, edited.text
    assert await counts(sessionmaker, "qx") == {"qxbeta": (1, 1), "qxgamma": (1, 1)}
    assert (await client.delete(f"/api/v1/posts/{first}", headers=auth(author))).status_code == 204
    assert await counts(sessionmaker, "qx") == {"qxbeta": (1, 1), "qxgamma": (0, 1)}


async def test_counts_equal_a_recount_after_protecting_and_unprotecting(client, sessionmaker, make_person, auth):
    author = await make_person()
    await publish(client, auth, author, "Hello #qyopen")
    await publish(client, auth, author, "Only followers #qyopen", audience="followers")
    await protect(client, auth, author)
    assert await counts(sessionmaker, "qy") == {"qyopen": (0, 2)}
    response = await client.patch("/api/v1/people/me", headers=auth(author), json={"protected": False})
    assert response.status_code == 200, response.text
    assert await counts(sessionmaker, "qy") == {"qyopen": (1, 1)}
    async with sessionmaker() as s:  # the table is what a recount from the posts says
        recount = await s.execute(text("""
            SELECT tag, count(*) FILTER (WHERE open), count(*) FILTER (WHERE NOT open)
            FROM (SELECT p.id, tag, public.hearth_post_open(a.protected, p.group_id, p.audience) AS open
                  FROM posts p JOIN people a ON a.id = p.author_id, unnest(p.hashtags::text[]) AS tag
                  WHERE p.deleted_at IS NULL) AS t GROUP BY tag"""))
        expected = {tag: (o, r) for tag, o, r in recount}
    assert {k: v for k, v in (await counts(sessionmaker, "")).items()} == expected


async def test_open_posts_are_those_anyone_may_read(sessionmaker, make_person, hidden_world):  # noqa: F811
    """hearth_post_open (the trigger's class) agrees with content.readable_by for a person with no follows
    and no groups: an open post is readable by everyone; outside groups, the others are not."""
    posts, _, _ = hidden_world
    stranger = await make_person()
    async with sessionmaker() as s:
        readable = set(await s.scalars(select(Post.id).where(content.readable_by(stranger.id))))
        rows = await s.execute(text("""SELECT p.id, p.group_id, public.hearth_post_open(a.protected, p.group_id,
                                       p.audience) FROM posts p JOIN people a ON a.id = p.author_id"""))
        for post_id, group_id, is_open in rows:
            assert not is_open or post_id in readable, post_id
            if group_id is None:
                assert is_open == (post_id in readable), post_id
    assert {str(p) for p in readable} == {posts[k] for k in READABLE["outsider"]}


async def test_a_tag_only_on_unreadable_posts_is_never_suggested(client, sessionmaker, make_person, auth):
    author, follower, outsider, insider = (await make_person(), await make_person(), await make_person(),
                                           await make_person())
    await follow(client, auth, follower, author)
    secret = await make_group(client, auth, author, "secret", members=[insider])
    open_post = await publish(client, auth, author, "Public notes #qzshared")
    await publish(client, auth, author, "Secret notes #qzshared #qzvault", group_id=secret)
    for n in range(3):
        await publish(client, auth, author, f"Followers {n} #qzinner", audience="followers")
    assert await suggested(client, auth, outsider, "#qz") == {"qzshared": 1}
    assert await suggested(client, auth, insider, "qz") == {"qzshared": 1, "qzvault": 1}
    assert await suggested(client, auth, follower, "qz") == {"qzshared": 1, "qzinner": 3}
    # the only open post goes: its tag is then only on the secret post
    assert (await client.delete(f"/api/v1/posts/{open_post}", headers=auth(author))).status_code == 204
    assert await suggested(client, auth, outsider, "qz") == {}
    assert await suggested(client, auth, insider, "qzs") == {"qzshared": 1}
    # a company post of an account that turns protected is hidden from non-followers, tag and all
    await publish(client, auth, author, "Company-wide #qzturn")
    assert await suggested(client, auth, outsider, "qzt") == {"qzturn": 1}
    await protect(client, auth, author)
    assert await suggested(client, auth, outsider, "qzt") == {}
    assert await suggested(client, auth, follower, "qzt") == {"qzturn": 1}
    # LIKE metacharacters are plain text
    assert await suggested(client, auth, follower, "qz%") == {} and await suggested(client, auth, follower, "q_") == {}


async def test_suggest_matches_word_starts_of_names_and_handles(client, make_person, auth):
    reader = await make_person()
    maria = await make_person(display_name="María Fernández", email="mfernandez@corp.local")
    await make_person(display_name="Armand Mafer", email="armand@corp.local")
    for q in ["fern", "mar", "@mfern", "maria fe", "MARÍA"]:
        response = await client.get("/api/v1/search/suggest", headers=auth(reader), params={"q": q})
        assert [p["id"] for p in response.json()["people"]] == [str(maria.id)], q
    response = await client.get("/api/v1/search/suggest", headers=auth(reader), params={"q": "ma"})
    assert [p["display_name"] for p in response.json()["people"]][:2] == ["María Fernández", "Armand Mafer"]
