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
    assert token.status_code == 403 and token.json()["required_scope"] == "notifications:write"
    # with notifications:write, subscribing still needs the read scope of each event type
    writer = keys.headers(admin, roles=["admin"], scopes=["notifications:write", "people:read"])
    refused = await client.post("/api/v1/notifications/webhooks", headers=writer,
                                json={"url": "http://127.0.0.1:9/x", "event_types": ["hearth.post.created"]})
    assert refused.status_code == 403 and refused.json()["required_scope"] == "posts:read"
    allowed = await client.post("/api/v1/notifications/webhooks", headers=writer,
                                json={"url": "http://127.0.0.1:9/x", "event_types": ["hearth.person.created"]})
    assert allowed.status_code == 201, allowed.text
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


class FlippingResolver:
    """Answers `first` to the first lookup and `then` to every later one (a DNS rebinding attacker's server)."""

    def __init__(self, first: str, then: str):
        self.answers, self.calls = [first, then], []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return [self.answers[min(len(self.calls) - 1, 1)]]


async def hook_for(sessionmaker, admin, url: str):
    """A webhook on a made-up name (creating it through the API would look the name up in real DNS)."""
    from services.notifications.webhooks.models import Webhook
    async with sessionmaker() as session:
        webhook = Webhook(owner_id=admin, url=url, event_types=["hearth.post.created"], secret="s" * 64)
        session.add(webhook)
        await session.commit()
    return webhook


async def test_a_delivery_connects_to_the_address_it_checked_and_keeps_the_name_in_host(settings, sessionmaker):
    async with LocalServer() as receiver:
        await hook_for(sessionmaker, uuid7(), f"http://hooks.example.test:{receiver.port}/in?x=1")
        await consume(settings, sessionmaker, post_event())
        resolver = FlippingResolver("127.0.0.1", "192.0.2.1")  # a second lookup would go nowhere
        async with httpx.AsyncClient() as http:
            assert await service.deliver_due(sessionmaker, http, settings, resolver=resolver) == 1
        assert resolver.calls == ["hooks.example.test"]  # one lookup for the delivery
        [request] = receiver.received
        assert request.headers["Host"] == f"hooks.example.test:{receiver.port}" and request.path == "/in"


async def test_https_delivery_verifies_the_certificate_of_the_name_and_sends_it_as_sni(settings, sessionmaker):
    import ssl
    async with LocalServer(tls_name="hooks.example.test") as receiver:
        await hook_for(sessionmaker, uuid7(), f"https://hooks.example.test:{receiver.port}/in")
        await consume(settings, sessionmaker, post_event())
        trusted = ssl.create_default_context(cadata=receiver.ca_pem)
        async with httpx.AsyncClient(verify=trusted) as http:
            await service.deliver_due(sessionmaker, http, settings, resolver=FlippingResolver("127.0.0.1", "192.0.2.1"))
        assert receiver.server_names == ["hooks.example.test"]
        [request] = receiver.received
        assert request.headers["Host"] == f"hooks.example.test:{receiver.port}"


async def test_rebinding_name_is_pinned_to_its_first_answer_and_a_private_answer_is_never_contacted(settings,
                                                                                                   sessionmaker):
    resolver = FlippingResolver("93.184.215.14", "127.0.0.1")
    target = await service.resolve_target("https://hooks.example.test/in", allow_private=False, resolver=resolver)
    assert target.address == "93.184.215.14" and len(resolver.calls) == 1
    url, headers, extensions = target.pinned()
    assert url == "https://93.184.215.14:443/in" and headers["Host"] == "hooks.example.test"
    assert extensions == {"sni_hostname": "hooks.example.test"}
    # at delivery time the name now answers loopback: refused before any connection is made
    strict = settings.model_copy(update={"webhook_allow_private_targets": False})
    async with LocalServer() as receiver:
        await hook_for(sessionmaker, uuid7(), f"http://hooks.example.test:{receiver.port}/in")
        await consume(settings, sessionmaker, post_event())
        async with httpx.AsyncClient() as http:
            assert await service.deliver_due(sessionmaker, http, strict, resolver=FlippingResolver("127.0.0.1",
                                                                                                   "127.0.0.1")) == 1
        assert receiver.received == []
    from services.notifications.webhooks.models import WebhookDelivery
    from sqlalchemy import select
    async with sessionmaker() as session:
        delivery = await session.scalar(select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc()))
    assert delivery.status == "pending" and "private" in delivery.last_error
