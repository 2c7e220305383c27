import hashlib
import hmac

import httpx
import pytest
from uuid6 import uuid7

from services.notifications.webhooks import service
from services.notifications.webhooks.consumers import webhook_consumer
from shared.db import utcnow
from shared.errors import InvalidInput
from shared.events import Envelope, PostCreated
from tests.notifications.local_server import LocalServer


def post_event() -> Envelope:
    payload = PostCreated(post_id=uuid7(), author_id=uuid7(), kind="update", audience="company", excerpt="hi",
                          created_at=utcnow())
    return Envelope.wrap(payload, source="posts", subject=payload.post_id)


async def consume(settings, sessionmaker, envelope: Envelope) -> bool:
    consumer = webhook_consumer(settings)
    return await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])


async def run_worker_once(settings, sessionmaker) -> int:
    async with httpx.AsyncClient() as http:
        return await service.deliver_due(sessionmaker, http, settings)


async def create(client, keys, admin, url, types=("hearth.post.created",)):
    response = await client.post("/api/v1/notifications/webhooks", headers=keys.headers(admin, roles=["admin"]),
                                 json={"url": url, "event_types": list(types)})
    assert response.status_code == 201, response.text
    return response.json()


async def test_delivery_is_signed_over_timestamp_and_body_and_sent_once(settings, sessionmaker, client, keys):
    admin = uuid7()
    async with LocalServer() as receiver:
        hook = await create(client, keys, admin, receiver.url + "/hook")
        assert len(hook["secret"]) == 64
        listed = (await client.get("/api/v1/notifications/webhooks", headers=keys.headers(admin))).json()
        assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]  # shown once
        event = post_event()
        assert await consume(settings, sessionmaker, event) is True
        assert await consume(settings, sessionmaker, event) is False  # redelivered: no second delivery
        assert await run_worker_once(settings, sessionmaker) == 1
        assert await run_worker_once(settings, sessionmaker) == 0
        [request] = receiver.received
        timestamp = request.headers["X-Hearth-Timestamp"]
        expected = hmac.new(hook["secret"].encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
        assert request.headers["X-Hearth-Signature"] == "v1=" + expected.hexdigest()
        assert request.json()["id"] == str(event.id) and request.json()["type"] == "hearth.post.created"
        log = (await client.get(f"/api/v1/notifications/webhooks/{hook['id']}/deliveries",
                                headers=keys.headers(admin))).json()["items"]
        assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [("succeeded", 1, 200)]


async def test_failures_are_retried_then_given_up_and_the_webhook_disabled(settings, sessionmaker, client, keys):
    admin = uuid7()
    async with LocalServer(statuses=[500] * 10) as receiver:
        hook = await create(client, keys, admin, receiver.url)
        await consume(settings, sessionmaker, post_event())
        for _ in range(3):  # webhook_max_attempts=3, no backoff in tests
            assert await run_worker_once(settings, sessionmaker) == 1
        [delivery] = (await client.get(f"/api/v1/notifications/webhooks/{hook['id']}/deliveries",
                                       headers=keys.headers(admin))).json()["items"]
        assert delivery["status"] == "failed" and delivery["attempts"] == 3 and delivery["last_status_code"] == 500
        await consume(settings, sessionmaker, post_event())
        assert await run_worker_once(settings, sessionmaker) == 1  # 4th failure in a row: disabled
        state = (await client.get(f"/api/v1/notifications/webhooks/{hook['id']}", headers=keys.headers(admin))).json()
        assert state["active"] is False and "4 failed" in state["disabled_reason"]
        await consume(settings, sessionmaker, post_event())
        assert await run_worker_once(settings, sessionmaker) == 0  # nothing is sent to a disabled webhook
        enabled = await client.patch(f"/api/v1/notifications/webhooks/{hook['id']}", headers=keys.headers(admin),
                                     json={"active": True})
        assert enabled.json()["active"] is True and enabled.json()["consecutive_failures"] == 0
    assert len(receiver.received) == 4


async def test_backoff_grows_exponentially(settings, sessionmaker, client, keys):
    admin = uuid7()
    slow = settings.model_copy(update={"webhook_retry_base_seconds": 30.0})
    async with LocalServer(statuses=[503, 503]) as receiver:
        await create(client, keys, admin, receiver.url)
        await consume(settings, sessionmaker, post_event())
        async with httpx.AsyncClient() as http:
            assert await service.deliver_due(sessionmaker, http, slow) == 1
            assert await service.deliver_due(sessionmaker, http, slow) == 0  # waits 30 s before the next try
        from services.notifications.webhooks.models import WebhookDelivery
        from sqlalchemy import select
        async with sessionmaker() as session:
            delivery = await session.scalar(select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc()))
        assert 25 < (delivery.next_attempt_at - utcnow()).total_seconds() <= 30


async def test_only_admins_create_and_only_owners_see_webhooks(client, keys):
    admin, other = uuid7(), uuid7()
    member = await client.post("/api/v1/notifications/webhooks", headers=keys.headers(other),
                               json={"url": "http://127.0.0.1:9/x", "event_types": ["hearth.post.created"]})
    assert member.status_code == 403 and member.json()["code"] == "webhooks-admin-only"
    token = await client.post("/api/v1/notifications/webhooks",
                              headers=keys.headers(admin, roles=["admin"], scopes=["posts:read"]),
                              json={"url": "http://127.0.0.1:9/x", "event_types": ["hearth.post.created"]})
    assert token.status_code in (401, 403)  # API tokens are refused by the scope map (no notifications:write)
    hook = await create(client, keys, admin, "http://127.0.0.1:9/x")
    for method, path in (("GET", ""), ("GET", "/deliveries"), ("PATCH", ""), ("DELETE", "")):
        response = await client.request(method, f"/api/v1/notifications/webhooks/{hook['id']}{path}",
                                        headers=keys.headers(other), json={"active": False})
        assert response.status_code == 404 and response.json()["code"] == "webhook-not-found", (method, path)
    unknown = await client.post("/api/v1/notifications/webhooks", headers=keys.headers(admin, roles=["admin"]),
                                json={"url": "http://127.0.0.1:9/x", "event_types": ["hearth.post.viewed"]})
    assert unknown.status_code == 422  # activity events are for analytics only


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://localhost:8080/", "http://10.1.2.3/", "http://[::1]/",
                                 "http://169.254.169.254/latest/meta-data", "http://192.168.0.10/",
                                 "ftp://example.com/",
                                 "http://user:pw@8.8.8.8/", "http://does-not-resolve.invalid/",
                                 "http://8.8.8.8:99999/", "http://[::1/", "http://0.0.0.0/", "http://a\x00b/"])
async def test_private_loopback_and_odd_targets_are_refused(url):
    with pytest.raises(InvalidInput):
        await service.check_target(url, allow_private=False)


async def test_a_public_address_is_accepted():
    await service.check_target("https://93.184.215.14/hook", allow_private=False)
