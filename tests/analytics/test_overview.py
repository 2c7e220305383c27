from datetime import timedelta

from sqlalchemy import func, select
from uuid6 import uuid7

from services.analytics.metrics.consumers import event_log_consumer
from services.analytics.metrics.models import EventLog
from shared.db import utcnow
from tests.events import person_created, post_created


async def deliver(settings, sessionmaker, envelope) -> bool:
    consumer = event_log_consumer(settings)
    return await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])


async def test_posts_per_day_counts_each_event_once(settings, sessionmaker, client, keys):
    event = post_created(uuid7())
    yesterday = post_created(uuid7())
    yesterday = yesterday.model_copy(update={"time": utcnow() - timedelta(days=1)})
    for envelope in (event, event, yesterday, person_created()):
        await deliver(settings, sessionmaker, envelope)
    response = await client.get("/api/v1/analytics/overview?days=7", headers=keys.headers(uuid7(), roles=["communications"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["posts"] == 2 and len(body["posts_per_day"]) == 7
    assert [d["count"] for d in body["posts_per_day"][-2:]] == [1, 1]
    assert body["posts_per_day"][-1]["day"] == utcnow().date().isoformat()
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(EventLog)) == 3  # both posts and the person


async def test_event_log_keeps_actor_and_client(settings, sessionmaker):
    author = uuid7()
    event = post_created(author)
    await deliver(settings, sessionmaker, event)
    async with sessionmaker() as session:
        row = await session.get(EventLog, event.id)
    assert row.actor_id == author and row.client == "web" and row.type == "hearth.post.created"


async def test_overview_is_for_communications_and_admins_only(client, keys):
    member = await client.get("/api/v1/analytics/overview", headers=keys.headers(uuid7()))
    assert member.status_code == 403 and member.headers["content-type"] == "application/problem+json"
    admin = await client.get("/api/v1/analytics/overview", headers=keys.headers(uuid7(), roles=["admin"]))
    assert admin.status_code == 200
    anonymous = await client.get("/api/v1/analytics/overview")
    assert anonymous.status_code == 401


async def test_api_token_needs_analytics_read_scope(client, keys):
    comms = uuid7()
    wrong = keys.headers(comms, roles=["communications"], scopes=["posts:read"])
    assert (await client.get("/api/v1/analytics/overview", headers=wrong)).status_code == 403
    right = keys.headers(comms, roles=["communications"], scopes=["analytics:read"])
    assert (await client.get("/api/v1/analytics/overview", headers=right)).status_code == 200


async def test_window_is_bounded(client, keys):
    headers = keys.headers(uuid7(), roles=["admin"])
    for days in (0, 367, "x"):
        response = await client.get(f"/api/v1/analytics/overview?days={days}", headers=headers)
        assert response.status_code == 422 and response.json()["code"] == "validation-failed"
