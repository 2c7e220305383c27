"""Push against a local HTTP server standing in for the providers: payload, signatures, pruning, retries."""

import base64
import json
import os
from datetime import time

import http_ece
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from py_vapid import Vapid
from sqlalchemy import select
from uuid6 import uuid7

from services.notifications.push.models import Device, PushJob
from services.notifications.push.providers import make_providers
from services.notifications.push.service import send_due
from shared.db import utcnow
from shared.events import PostCreated
from tests.notifications.builders import add_person, send
from tests.notifications.local_server import LocalServer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Browser:
    """A browser's push subscription: the key pair and auth secret the server encrypts to."""

    def __init__(self, endpoint: str):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        public = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                            serialization.PublicFormat.UncompressedPoint)
        self.auth = os.urandom(16)
        self.device = {"platform": "web", "token": endpoint, "keys": {"p256dh": b64(public), "auth": b64(self.auth)}}

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth,
                                           version="aes128gcm"))


def fcm_account(token_uri: str) -> tuple[dict, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"client_email": "hearth@project.iam.gserviceaccount.com", "private_key": pem, "private_key_id": "k1",
            "token_uri": token_uri}, key.public_key()


def mention(person):
    return PostCreated(post_id=uuid7(), author_id=uuid7(), kind="update", audience="company", excerpt="Lunch?",
                       mentions=[person], created_at=utcnow())


async def register(client, keys, person, device) -> dict:
    response = await client.post("/api/v1/notifications/devices", headers=keys.headers(person), json=device)
    assert response.status_code == 201, response.text
    return response.json()


async def jobs(sessionmaker, person):
    async with sessionmaker() as session:
        return list(await session.scalars(select(PushJob).where(PushJob.person_id == person)))


async def devices(sessionmaker, person):
    async with sessionmaker() as session:
        return list(await session.scalars(select(Device).where(Device.person_id == person)))


async def test_web_push_is_encrypted_vapid_signed_and_a_gone_endpoint_is_pruned(settings, sessionmaker, client, keys):
    vapid = Vapid()
    vapid.generate_keys()
    web = settings.model_copy(update={"vapid_private_key": vapid.private_pem().decode(),
                                      "vapid_subject": "mailto:ops@corp.local"})
    person = uuid7()
    await add_person(settings, sessionmaker, id=person, display_name="Ana Lopez")
    async with LocalServer(statuses=[201, 410]) as provider:
        browser = Browser(provider.url + "/push/abc")
        await register(client, keys, person, browser.device)
        author = await add_person(settings, sessionmaker, display_name="Bo Chen")
        event = mention(person).model_copy(update={"author_id": author})
        await send(settings, sessionmaker, event)
        other = event.model_copy(update={"post_id": uuid7()})
        await send(settings, sessionmaker, other)
        async with httpx.AsyncClient() as http:
            assert await send_due(sessionmaker, make_providers(web, http), web) == 2
        first, second = provider.received
        assert first.path == "/push/abc" and first.headers["Content-Encoding"] == "aes128gcm"
        assert int(first.headers["TTL"]) > 0
        scheme, _, params = first.headers["Authorization"].partition(" ")
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        assert scheme == "vapid" and fields["k"] == b64(vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
        claims = jwt.decode(fields["t"], vapid.public_key, algorithms=["ES256"], audience=provider.url)
        assert claims["sub"] == "mailto:ops@corp.local"
        message = browser.decrypt(first.body)
        assert message["title"] == "Bo Chen mentioned you" and message["body"] == "Lunch?"
        assert message["data"]["post_id"] in {str(event.post_id), str(other.post_id)}
        assert await devices(sessionmaker, person) == []  # 410 Gone: the subscription is removed


async def test_fcm_v1_uses_an_oauth_token_from_the_service_account_and_prunes_unregistered(
        settings, sessionmaker, client, keys):
    person = uuid7()
    async with LocalServer() as google:
        account, public_key = fcm_account(google.url + "/token")
        fcm = settings.model_copy(update={"fcm_project_id": "hearth-test", "fcm_endpoint": google.url,
                                          "fcm_service_account_json": json.dumps(account)})
        google.replies["/token"] = (200, {"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"})
        send_path = "/v1/projects/hearth-test/messages:send"
        google.replies[send_path] = (200, {"name": "projects/hearth-test/messages/1"})
        await register(client, keys, person, {"platform": "android", "token": "fcm-token-1"})
        await send(settings, sessionmaker, mention(person))
        async with httpx.AsyncClient() as http:
            providers = make_providers(fcm, http)
            assert await send_due(sessionmaker, providers, fcm) == 1
            token_request, message_request = google.received
            assertion = dict(pair.split("=", 1) for pair in token_request.body.decode().split("&"))["assertion"]
            claims = jwt.decode(assertion, public_key, algorithms=["RS256"], audience=account["token_uri"])
            assert claims["iss"] == account["client_email"] and "firebase.messaging" in claims["scope"]
            assert message_request.headers["Authorization"] == "Bearer ya29.test"
            body = message_request.json()["message"]
            assert body["token"] == "fcm-token-1" and body["notification"]["title"].endswith("mentioned you")
            assert [j.status for j in await jobs(sessionmaker, person)] == ["sent"]
            google.replies[send_path] = (404, {"error": {"code": 404, "status": "NOT_FOUND", "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}})
            await send(settings, sessionmaker, mention(person))
            assert await send_due(sessionmaker, providers, fcm) == 1
        assert len([r for r in google.received if r.path == "/token"]) == 1  # the access token is reused
        assert await devices(sessionmaker, person) == []


async def test_provider_trouble_is_retried_then_sent(settings, sessionmaker, client, keys):
    vapid = Vapid()
    vapid.generate_keys()
    web = settings.model_copy(update={"vapid_private_key": vapid.private_pem().decode()})
    person = uuid7()
    async with LocalServer(statuses=[503, 201]) as provider:
        await register(client, keys, person, Browser(provider.url + "/p").device)
        await send(settings, sessionmaker, mention(person))
        async with httpx.AsyncClient() as http:
            providers = make_providers(web, http)
            assert await send_due(sessionmaker, providers, web) == 1
            [job] = await jobs(sessionmaker, person)
            assert job.status == "pending" and job.attempts == 1
            assert await send_due(sessionmaker, providers, web) == 1  # no backoff in tests
        [job] = await jobs(sessionmaker, person)
        assert job.status == "sent" and job.attempts == 2 and len(provider.received) == 2


async def test_quiet_hours_hold_pushes_and_preferences_and_defaults_choose_kinds(settings, sessionmaker, client, keys):
    person, night_owl = uuid7(), uuid7()
    for who in (person, night_owl):
        await register(client, keys, who, {"platform": "android", "token": f"t-{who}"})
    now = utcnow()
    start = time((now.hour + 23) % 24)
    end = time((now.hour + 2) % 24)
    await client.patch("/api/v1/notifications/preferences", headers=keys.headers(night_owl),
                       json={"time_zone": "UTC", "quiet_start": start.isoformat(), "quiet_end": end.isoformat()})
    await send(settings, sessionmaker, mention(night_owl))
    async with LocalServer() as google:
        account, _ = fcm_account(google.url + "/token")
        google.replies["/token"] = (200, {"access_token": "t", "expires_in": 3600})
        fcm = settings.model_copy(update={"fcm_project_id": "p", "fcm_endpoint": google.url,
                                          "fcm_service_account_json": json.dumps(account)})
        async with httpx.AsyncClient() as http:
            assert await send_due(sessionmaker, make_providers(fcm, http), fcm) == 1
        assert google.received == []
    [held] = await jobs(sessionmaker, night_owl)
    assert held.status == "pending" and held.attempts == 0 and held.next_attempt_at > utcnow()
    # reactions do not push by default; switching mentions' push off stops them
    from shared.events import ReactionAdded
    post = mention(uuid7()).model_copy(update={"author_id": person})
    await send(settings, sessionmaker, post)
    await send(settings, sessionmaker, ReactionAdded(post_id=post.post_id, post_author_id=person, person_id=uuid7(),
                                                     kind="like"))
    await client.put("/api/v1/notifications/preferences/kinds/mention", headers=keys.headers(person),
                     json={"in_app": True, "push": False, "email": True})
    await send(settings, sessionmaker, mention(person))
    assert await jobs(sessionmaker, person) == []


async def test_devices_are_the_callers_own_and_validated(client, keys):
    ana, mallory = uuid7(), uuid7()
    device = await register(client, keys, ana, {"platform": "ios", "token": "apns-token"})
    assert [d["id"] for d in (await client.get("/api/v1/notifications/devices", headers=keys.headers(ana))).json()] \
        == [device["id"]]
    assert (await client.get("/api/v1/notifications/devices", headers=keys.headers(mallory))).json() == []
    stolen = await client.delete(f"/api/v1/notifications/devices/{device['id']}", headers=keys.headers(mallory))
    assert stolen.status_code == 404 and stolen.json()["code"] == "device-not-found"
    for bad in ({"platform": "web", "token": "https://push.example/x"}, {"platform": "ios", "token": ""},
                {"platform": "pager", "token": "x"}, {"platform": "ios", "token": "x" * 2049},
                {"platform": "android", "token": "x", "keys": {"p256dh": "a", "auth": "b"}}):
        response = await client.post("/api/v1/notifications/devices", headers=keys.headers(ana), json=bad)
        assert response.status_code == 422, bad
    assert (await client.delete(f"/api/v1/notifications/devices/{device['id']}",
                                headers=keys.headers(ana))).status_code == 204


async def test_apns_through_aioapns_is_token_signed_and_prunes_unregistered(settings, sessionmaker, client, keys):
    from tests.notifications.apns_standin import ApnsStandIn
    apns_key = ec.generate_private_key(ec.SECP256R1())
    pem = apns_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    person = uuid7()
    await register(client, keys, person, {"platform": "ios", "token": "a" * 64})
    await register(client, keys, person, {"platform": "ios", "token": "b" * 64})
    await send(settings, sessionmaker, mention(person))
    async with ApnsStandIn(answers={"b" * 64: (410, "Unregistered")}) as apple:
        ios = settings.model_copy(update={
            "apns_key": pem, "apns_key_id": "KEY123", "apns_team_id": "TEAM42", "apns_topic": "com.example.hearth",
            "apns_endpoint": apple.endpoint, "apns_ca_file": apple.ca_file.name})
        async with httpx.AsyncClient() as http:
            assert await send_due(sessionmaker, make_providers(ios, http), ios) == 2
    first = next(r for r in apple.requests if r.headers[":path"] == "/3/device/" + "a" * 64)
    assert first.headers["apns-topic"] == "com.example.hearth"
    scheme, token = first.headers["authorization"].split()
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token)["kid"] == "KEY123"
    assert jwt.decode(token, apns_key.public_key(), algorithms=["ES256"])["iss"] == "TEAM42"
    assert first.body["aps"]["alert"]["title"].endswith("mentioned you") and first.body["aps"]["alert"]["body"] == \
        "Lunch?"
    assert [d.token for d in await devices(sessionmaker, person)] == ["a" * 64]  # the unregistered one is gone
    assert [j.status for j in await jobs(sessionmaker, person)] == ["sent"]


async def test_web_push_endpoint_is_checked_and_pinned_at_every_send(settings, sessionmaker):
    vapid = Vapid()
    vapid.generate_keys()
    web = settings.model_copy(update={"vapid_private_key": vapid.private_pem().decode()})
    person = uuid7()
    async with LocalServer() as provider:
        browser = Browser(f"http://push.example.test:{provider.port}/push/abc")
        answers = iter(["127.0.0.1", "192.0.2.1"])  # a second lookup would go nowhere

        async def resolver(host, port):
            return [next(answers)]
        async with sessionmaker() as session:  # registered directly: the API would look the name up in real DNS
            session.add(Device(person_id=person, platform="web", token=browser.device["token"],
                               p256dh=browser.device["keys"]["p256dh"], auth=browser.device["keys"]["auth"]))
            await session.commit()
        await send(settings, sessionmaker, mention(person))
        async with httpx.AsyncClient() as http:
            providers = make_providers(web, http)
            providers["web"].resolver = resolver
            assert await send_due(sessionmaker, providers, web) == 1
        [request] = provider.received
        assert request.headers["Host"] == f"push.example.test:{provider.port}"
        assert browser.decrypt(request.body)["body"] == "Lunch?"
        # now the name answers loopback, and private targets are not allowed: the device is dropped unsent
        strict = web.model_copy(update={"webhook_allow_private_targets": False})
        answers = iter(["127.0.0.1"])
        await send(settings, sessionmaker, mention(person))
        async with httpx.AsyncClient() as http:
            providers = make_providers(strict, http)
            providers["web"].resolver = resolver
            assert await send_due(sessionmaker, providers, strict) == 1
        assert len(provider.received) == 1 and await devices(sessionmaker, person) == []
