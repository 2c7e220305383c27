"""The numbers of DESIGN §6 on a company whose answers the test computes itself (tests/analytics/scenario.py)."""

import random

import pytest
from sqlalchemy import text

from services.analytics.ingest.recompute import recompute
from tests.analytics.scenario import END, START, company

WINDOW = f"from={START.isoformat()}&to={END.isoformat()}"
KEYS = ("members", "active_members", "active_rate", "contributors", "contributor_rate", "engaged_members",
        "organic_content", "organic_content_previous", "organic_content_growth", "average_social_reach",
        "response_rate", "median_time_to_first_response_seconds", "stickiness")


@pytest.fixture
def staff(keys):
    from uuid6 import uuid7
    return keys.headers(uuid7(), roles=["communications"])


async def overview(client, staff):
    response = await client.get(f"/api/v1/analytics/overview?{WINDOW}", headers=staff)
    assert response.status_code == 200, response.text
    return response.json()


async def test_overview_matches_the_definitions(deliver, client, staff):
    scenario = company()
    await deliver(*scenario.events)
    body = await overview(client, staff)
    expected = scenario.expected_overview()
    assert {k: body[k] for k in KEYS} == {k: expected[k] for k in KEYS}
    assert body["series"] == expected["series"]
    # The same answers spelled out, so a wrong reference cannot hide a wrong service:
    assert body["members"] == 10  # 5 Eng + 4 Ops + the official account; not d1 (deactivated), not `late`
    assert body["active_members"] == 7  # e1 e2 e4 e5 o1 o2 news; not e3 (only after W), not o3 (signed in only)
    assert body["engaged_members"] == 1  # e1 (10 days); e2 has 9
    assert body["organic_content"] == 4 and body["organic_content_previous"] == 1
    assert body["average_social_reach"] == 0.75  # p1: e2 + e3 (not the author, not d1); p3: e5; the news posts: 0
    assert body["response_rate"] == 0.25 and body["median_time_to_first_response_seconds"] == 5 * 3600
    assert [d["dau"] for d in body["series"]] == [2, 1, 1, 1, 1, 0, 2]


async def test_duplicate_deliveries_count_once(deliver, client, staff):
    scenario = company()
    doubled = [e for e in scenario.events for _ in range(2)]
    await deliver(*doubled)
    await deliver(*scenario.events, batch=True)
    body = await overview(client, staff)
    expected = scenario.expected_overview()
    assert {k: body[k] for k in KEYS} == {k: expected[k] for k in KEYS}


async def test_any_arrival_order_and_batching_gives_the_same_numbers(deliver, client, staff):
    scenario = company()
    people = [e for e in scenario.events if e.type.startswith("hearth.person.")]
    rest = [e for e in scenario.events if not e.type.startswith("hearth.person.")]
    random.Random(12).shuffle(rest)  # views before their post, comments before the post, late days
    await deliver(*people)
    await deliver(*rest[:20])
    await deliver(*rest[20:], batch=True)
    body = await overview(client, staff)
    expected = scenario.expected_overview()
    assert {k: body[k] for k in KEYS} == {k: expected[k] for k in KEYS}
    assert body["series"] == expected["series"]


async def test_segments_suppress_four_members_and_show_five(deliver, client, staff):
    await deliver(*company().events)
    response = await client.get(f"/api/v1/analytics/segments?by=department&{WINDOW}", headers=staff)
    assert response.status_code == 200, response.text
    items = {s["segment"]: s for s in response.json()["items"]}
    assert items["Ops"] == {"segment": "Ops", "suppressed": True}  # 4 members: no numbers at all
    assert items["Comms"] == {"segment": "Comms", "suppressed": True}
    eng = items["Eng"]  # exactly 5 members (d1 was deactivated, `late` joined after W)
    assert not eng["suppressed"] and eng["members"] == 5 and eng["active_members"] == 4 and eng["active_rate"] == 0.8
    assert eng["contributors"] == 2 and eng["engaged_members"] == 1 and eng["organic_content"] == 3


async def test_barriers_are_segments_below_half_the_network_rate(deliver, client, staff):
    scenario = company()
    for name in ("x1", "x2", "x3", "x4", "x5"):
        scenario.person(name, department="Legal")  # 5 members, nobody active
    await deliver(*scenario.events)
    response = await client.get(f"/api/v1/analytics/barriers?{WINDOW}", headers=staff)
    body = response.json()
    assert body["network_active_rate"] == round(7 / 15, 4)
    assert [s["segment"] for s in body["items"]] == ["Legal"]


async def test_recompute_rebuilds_the_same_numbers(deliver, client, staff, sessionmaker):
    await deliver(*company().events)
    before = await overview(client, staff)
    segments = (await client.get(f"/api/v1/analytics/segments?{WINDOW}", headers=staff)).json()
    async with sessionmaker() as session:
        # Damage every rollup, then rebuild it from the event log.
        for table in ("person_day", "person_bits", "post_viewers", "post_responders", "comments", "posts", "author_day",
                      "content_day"):
            await session.execute(text(f"DELETE FROM {table}"))
        await session.commit()
    assert (await overview(client, staff))["active_members"] == 0
    async with sessionmaker() as session:
        replayed = await recompute(session, start=START.replace(month=10, day=1), end=END.replace(day=20))
        await session.commit()
    assert replayed > 30
    assert await overview(client, staff) == before
    assert (await client.get(f"/api/v1/analytics/segments?{WINDOW}", headers=staff)).json() == segments


# author_day recounted from the posts and comments analytics knows (what overview and segments summed before it).
RECOUNT = """
SELECT day, author_id, sum(posts)::int, sum(organic)::int, sum(comments)::int, sum(reach)::int, sum(responded)::int FROM (
  SELECT (created_at AT TIME ZONE 'UTC')::date AS day, author_id, 1 AS posts,
         (kind IS DISTINCT FROM 'announcement')::int AS organic, 0 AS comments, reach,
         coalesce(first_response_at <= created_at + interval '24 hours', false)::int AS responded FROM posts
  UNION ALL SELECT (created_at AT TIME ZONE 'UTC')::date, author_id, 0, 0, 1, 0, 0 FROM comments) t
GROUP BY 1, 2 ORDER BY 1, 2"""


async def test_author_day_and_viewers_post_days_follow_the_posts_whatever_the_order_duplicates_and_lateness(
        deliver, sessionmaker):
    scenario = company()
    people = [e for e in scenario.events if e.type.startswith("hearth.person.")]
    rest = [e for e in scenario.events if not e.type.startswith("hearth.person.")]
    random.Random(3).shuffle(rest)  # views and comments before their post, late days
    await deliver(*people)
    await deliver(*rest[:15], *rest[:15])  # delivered twice
    await deliver(*rest[15:], *rest[30:], batch=True)
    async with sessionmaker() as session:
        kept = (await session.execute(text("SELECT day, author_id, posts, organic_posts, comments, reach::int, "
                                           "responded FROM author_day ORDER BY 1, 2"))).all()
        recount = (await session.execute(text(RECOUNT))).all()
        stale_viewers = await session.scalar(text("""
            SELECT count(*) FROM post_viewers v JOIN posts p USING (post_id)
            WHERE (v.post_day, v.author_id) IS DISTINCT FROM ((p.created_at AT TIME ZONE 'UTC')::date, p.author_id)"""))
        days = (await session.execute(text("SELECT day, posts, organic_posts, comments, reach::int, responded "
                                           "FROM content_day ORDER BY day"))).all()
    assert kept == recount and sum(row[2] for row in kept) == len(scenario.posts)
    assert stale_viewers == 0  # views that came before their post learnt its day and author when it came
    by_day = {}
    for day, _, *numbers in kept:
        by_day[day] = [a + b for a, b in zip(by_day.get(day, [0] * 5), numbers)]
    assert days == sorted((day, *numbers) for day, numbers in by_day.items())
