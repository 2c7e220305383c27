"""End to end over HTTP and the real broker. Every test makes its own people and data and waits for what
earlier tests wrote to settle before it counts anything, so the tests pass in any order (the broker-down
test restarts the broker; the others must not care whether it ran before them)."""

from itertools import count

import asyncpg

from tests.e2e.conftest import ADMIN, E2E_PREFIX, eventually, settled

_seq = count(1)


async def login(http, stack, email, password):
    response = await http.post(f"{stack.urls['posts']}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def new_person(http, stack, admin_headers):
    n = next(_seq)
    email = f"e2e.person{n}@corp.local"
    response = await http.post(f"{stack.urls['posts']}/api/v1/people", headers=admin_headers,
                               json={"email": email, "display_name": f"E2E {n}", "password": "e2e-password"})
    assert response.status_code == 201, response.text
    person = response.json()
    return person, await login(http, stack, email, "e2e-password")


async def post(http, stack, headers, body):
    response = await http.post(f"{stack.urls['posts']}/api/v1/posts", headers=headers | {"X-Hearth-Client": "web"},
                               json={"body": body})
    assert response.status_code == 201, response.text
    return response.json()


async def mention_notifications(http, stack, headers, post_id):
    response = await http.get(f"{stack.urls['notifications']}/api/v1/notifications?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    return [n for n in response.json()["items"] if n["subject_id"] == post_id]


async def posts_today(http, stack, headers):
    response = await http.get(f"{stack.urls['analytics']}/api/v1/analytics/overview?days=1", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["posts"]


async def test_every_service_is_ready_and_reports_its_background_jobs(http, stack):
    for name, url in stack.urls.items():
        # Bounded wait: after a broker restart (another test) consumers rejoin before the service is ready.
        response = await eventually(lambda url=url: http.get(f"{url}/readyz"), lambda r: r.status_code == 200,
                                    timeout=60, message=f"{name} to be ready")
        assert response.json()["background"]["outbox-relay"] is True
        metrics = (await http.get(f"{url}/metrics")).text
        assert 'hearth_background_up{job="outbox-relay",kind="relay"} 1.0' in metrics, name
        assert 'hearth_relay_oldest_pending_seconds{job="outbox-relay"}' in metrics, name
    metrics = (await http.get(f"{stack.urls['notifications']}/metrics")).text
    for family in ("lag", "processed", "retried", "dead_lettered"):
        assert f'hearth_consumer_{family}{{job="notifications.directory"}}' in metrics, family


async def test_mention_reaches_notifications_and_analytics(http, stack):
    admin = await login(http, stack, ADMIN["email"], ADMIN["password"])
    maria, maria_headers = await new_person(http, stack, admin)
    before = await posts_today(http, stack, admin)
    created = await post(http, stack, admin, f"Welcome aboard @{maria['handle']}!")
    [notification] = await eventually(lambda: mention_notifications(http, stack, maria_headers, created["id"]),
                                      lambda found: len(found) == 1, message="the mention notification")
    assert notification["kind"] == "mention" and notification["excerpt"].startswith("Welcome aboard")
    await eventually(lambda: posts_today(http, stack, admin), lambda n: n >= before + 1,
                     message="analytics to count the post")


async def test_people_read_models_follow_the_directory(http, stack):
    admin = await login(http, stack, ADMIN["email"], ADMIN["password"])
    person, _ = await new_person(http, stack, admin)

    async def directory_rows():
        rows = []
        for service in ("messaging", "notifications", "analytics"):
            conn = await asyncpg.connect(stack.server_url.rsplit("/", 1)[0] + f"/{E2E_PREFIX}{service}")
            try:
                rows.append(await conn.fetchval("SELECT display_name FROM directory_people WHERE id = $1::uuid",
                                                person["id"]))
            finally:
                await conn.close()
        return rows

    await eventually(directory_rows, lambda rows: rows == [person["display_name"]] * 3,
                     message="people.v1 to reach every read model")


async def test_posts_start_up_creates_the_all_company_group(http, stack):
    admin = await login(http, stack, ADMIN["email"], ADMIN["password"])
    response = await http.get(f"{stack.urls['posts']}/api/v1/groups?limit=100", headers=admin)
    assert response.status_code == 200, response.text
    assert [g for g in response.json()["items"] if g.get("all_company")], response.json()


async def test_broker_down_writes_succeed_and_are_delivered_exactly_once_later(http, stack):
    admin = await login(http, stack, ADMIN["email"], ADMIN["password"])
    maria, maria_headers = await new_person(http, stack, admin)
    await settled(stack)  # what earlier tests wrote is counted before `before` is read
    before = await posts_today(http, stack, admin)

    stack.broker.stop()
    created = await post(http, stack, admin, f"Written while the broker is down, @{maria['handle']}")
    assert await mention_notifications(http, stack, maria_headers, created["id"]) == []

    await stack.restart_broker()
    await eventually(lambda: mention_notifications(http, stack, maria_headers, created["id"]),
                     lambda found: len(found) == 1, timeout=60, message="delivery after the broker returned")
    await eventually(lambda: posts_today(http, stack, admin), lambda n: n == before + 1, timeout=60,
                     message="analytics to count the post once")
    # Duplicates (the relay and the launcher's re-publishing both send the row) have all been consumed
    # once every consumer group has committed to the end of its topics: nothing was applied twice.
    await settled(stack)
    assert len(await mention_notifications(http, stack, maria_headers, created["id"])) == 1
    assert await posts_today(http, stack, admin) == before + 1


async def test_every_service_counts_a_persons_requests_against_the_rate_limit(http, stack):
    """The real processes count in the database (autocommit, one statement): each request uses one up."""
    admin = await login(http, stack, ADMIN["email"], ADMIN["password"])
    _, headers = await new_person(http, stack, admin)
    paths = {"posts": "/api/v1/people/me", "messaging": "/api/v1/conversations",
             "notifications": "/api/v1/notifications/unread-count"}
    for service, path in paths.items():
        first, second = [await http.get(f"{stack.urls[service]}{path}", headers=headers) for _ in range(2)]
        assert first.status_code == second.status_code == 200, (service, first.text)
        remaining = int(first.headers["ratelimit-remaining"]), int(second.headers["ratelimit-remaining"])
        assert remaining[1] == remaining[0] - 1, (service, remaining)
