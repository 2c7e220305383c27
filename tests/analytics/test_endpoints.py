"""Every metrics endpoint answers with the numbers of its definition, and only to whom it may."""

import pytest
from uuid6 import uuid7

from tests.analytics import factories as f
from tests.analytics.factories import at
from tests.analytics.scenario import END, START, company
from tests.shared.revocation_checks import api_token

WINDOW = f"from={START.isoformat()}&to={END.isoformat()}"
STAFF_ONLY = ("overview", "segments?by=location", "barriers", "champions", "top/people", "content-types", "leaders",
              "search", "clients")


@pytest.fixture
async def world(deliver):
    s = company()
    group, question = uuid7(), uuid7()
    admin_of_group = s.people["o3"]
    s.events += [
        f.event("group.created", actor=s.people["o3"], time=at("2026-10-01T00:00"), subject=group,
                group={"id": str(group), "name": "Runners", "visibility": "public", "updated_at": "2026-10-01T00:00:00Z"}),
        f.event("group.member_added", actor=admin_of_group, time=at("2026-10-01T00:00"), group_id=group,
                person_id=admin_of_group, role="owner", via="created"),
    ]
    for name in ("e1", "e2", "o1"):
        s.events.append(f.event("group.member_added", actor=s.people[name], time=at("2026-10-02T00:00"),
                                group_id=group, person_id=s.people[name], role="member", via="joined"))
    s.events.append(f.post(s.people["e1"], question, time=at("2026-11-03T10:00"), kind="question", group_id=group,
                           client="ios"))
    s.events.append(f.view(s.people["e2"], question, time=at("2026-11-03T11:00"), client="android"))
    announcement = [pid for pid, p in s.posts.items() if p["kind"] == "announcement"][0]
    for name in ("e1", "e2", "e3", "e4", "o1"):
        s.events.append(f.ack(s.people[name], announcement, time=at("2026-11-04T10:00")))
    s.events += [f.search(s.people["e2"], "Expenses  policy", 0, time=at("2026-11-04T10:00")),
                 f.search(s.people["e2"], "expenses policy", 3, time=at("2026-11-04T11:00")),
                 f.search(s.people["e3"], "holidays", 0, time=at("2026-11-05T10:00"))]
    await deliver(*s.events)
    s.group, s.question, s.announcement = group, question, announcement
    return s


async def get(client, path, headers):
    sep = "&" if "?" in path else "?"
    return await client.get(f"/api/v1/analytics/{path}{sep}{WINDOW}", headers=headers)


async def test_people_level_and_network_lists_never_reach_members(world, client, keys):
    member = keys.headers(world.people["e1"])
    for path in STAFF_ONLY:
        response = await get(client, path, member)
        assert response.status_code == 403, path
        assert response.headers["content-type"] == "application/problem+json"
    assert (await get(client, "overview", {})).status_code == 401
    admin = keys.headers(uuid7(), roles=["admin"])
    for path in STAFF_ONLY:
        assert (await get(client, path, admin)).status_code == 200, path


async def test_group_health_for_its_admins_and_staff_only(world, client, keys):
    path = f"groups/{world.group}"
    owner = await get(client, path, keys.headers(world.people["o3"]))
    assert owner.status_code == 200, owner.text
    body = owner.json()
    assert body["members"] == 4 and body["posts"] == 1 and body["unanswered_questions"] == 1
    assert body["active_members"] == 2 and body["response_rate"] == 0.0  # e1 asked, e2 viewed; nobody answered
    for other in ("e1", "o1"):  # plain members of the group, and
        assert (await get(client, path, keys.headers(world.people[other]))).status_code == 403
    top = await get(client, "top/groups", keys.headers(world.people["o3"]))
    assert [g["group_id"] for g in top.json()["items"]] == [str(world.group)]
    assert (await get(client, "top/groups", keys.headers(world.people["e2"]))).status_code == 403
    assert (await get(client, f"groups/{uuid7()}", keys.headers(uuid7(), roles=["admin"]))).status_code == 404


async def test_post_numbers_for_author_group_admin_and_staff(world, client, keys):
    path = f"posts/{world.question}"
    author = await get(client, path, keys.headers(world.people["e1"]))
    assert author.status_code == 200, author.text
    body = author.json()
    assert body["seen_by"] == 1 and body["audience"] == 3 and body["reach_rate"] == round(1 / 3, 4)
    assert body["time_to_first_response_seconds"] is None
    assert (await get(client, path, keys.headers(world.people["o3"]))).status_code == 200  # the group's owner
    assert (await get(client, path, keys.headers(world.people["e2"]))).status_code == 403
    assert (await get(client, f"posts/{uuid7()}", keys.headers(uuid7(), roles=["admin"]))).status_code == 404
    assert (await get(client, "posts/not-a-uuid", keys.headers(uuid7(), roles=["admin"]))).status_code == 422


async def test_announcement_acknowledgement_rate_by_segment(world, client, keys):
    path = f"announcements/{world.announcement}"
    assert (await get(client, path, keys.headers(world.people["e1"]))).status_code == 403
    body = (await get(client, path, keys.headers(world.people["news"]))).json()
    assert body["audience"] == 10 and body["acknowledged"] == 5  # members now, the author excluded
    items = {s["segment"]: s for s in body["items"]}
    assert items["Eng"]["acknowledged"] == 4 and items["Eng"]["acknowledgement_rate"] == round(4 / 6, 4)
    assert items["Ops"] == {"segment": "Ops", "suppressed": True}


async def test_search_clients_content_types_top_people_and_leaders(world, client, keys):
    staff = keys.headers(uuid7(), roles=["communications"])
    search = (await get(client, "search", staff)).json()
    assert search["searches"] == 3 and search["zero_result_searches"] == 2
    assert search["top_queries"][0] == {"query": "expenses policy", "searches": 2, "zero_results": 1}
    assert {q["query"] for q in search["zero_result_queries"]} == {"expenses policy", "holidays"}
    clients = {c["client"]: c for c in (await get(client, "clients", staff)).json()["items"]}
    assert clients["web"]["active_people"] == 8 and clients["ios"]["active_people"] == 1
    kinds = {k["kind"]: k for k in (await get(client, "content-types", staff)).json()["items"]}
    assert kinds["question"]["posts"] == 2 and kinds["announcement"]["posts"] == 1
    top = (await get(client, "top/people", staff)).json()["items"]
    assert top[0]["person_id"] in {str(world.people["e1"]), str(world.people["e4"])}
    leaders = (await get(client, "leaders", staff)).json()
    assert leaders["leaders"] == 0 and leaders["employee_posts"] == 5  # created in W


async def test_champions_rank_by_distinct_people_engaging(world, client, keys, deliver):
    s = world
    p = [pid for pid, post in s.posts.items() if post["author"] == s.people["e4"]][0]
    await deliver(f.reaction(s.people["e1"], p, time=at("2026-11-06T10:00")),
                  f.comment(s.people["e1"], p, time=at("2026-11-06T10:05")),  # the same person twice
                  f.reaction(s.people["e2"], p, time=at("2026-11-06T11:00")),
                  f.reaction(s.people["o2"], p, time=at("2026-11-06T12:00")),
                  f.comment(s.people["e4"], p, time=at("2026-11-06T12:00")))  # the author: not counted
    body = (await get(client, "champions", keys.headers(uuid7(), roles=["communications"]))).json()
    eng = {x["segment"]: x for x in body["items"]}["Eng"]
    assert [(c["person_id"], c["engagement_received"]) for c in eng["champions"]] == [
        (str(s.people["e4"]), 3), (str(s.people["e1"]), 2)]  # e1: o1 and o2 on p1


async def test_bad_windows_and_dimensions_are_4xx_problems(client, keys):
    staff = keys.headers(uuid7(), roles=["admin"])
    for query in ("from=2026-11-09&to=2026-11-02", "from=2025-01-01&to=2026-11-02", "from=yesterday",
                  "by=shoe-size"):
        response = await client.get(f"/api/v1/analytics/segments?{query}", headers=staff)
        assert response.status_code == 422, query
        assert response.headers["content-type"] == "application/problem+json"


async def test_api_token_needs_analytics_read_scope(client, keys):
    staff = uuid7()
    wrong = api_token(keys, staff, scopes=["posts:read"], token_id=uuid7())
    assert (await client.get("/api/v1/analytics/overview", headers=wrong)).status_code == 403
    right = api_token(keys, staff, scopes=["analytics:read"], token_id=uuid7())
    assert (await client.get("/api/v1/analytics/overview", headers=right)).status_code == 200
