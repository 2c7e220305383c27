"""Push provider adapters: Web Push (pywebpush + VAPID), FCM HTTP v1 and APNs (aioapns).

Each answers one send with an Outcome: sent, gone (the provider says the token is dead: the device is
removed), retry (throttled, provider trouble, network) or failed (a permanent refusal of this message).
"""

import asyncio
import json
import time
from enum import Enum
from urllib.parse import urlsplit

import httpx
import jwt
import structlog

from services.notifications.config import Settings
from services.notifications.push.models import Device
from services.notifications.webhooks.service import Resolver, UnresolvableTarget, resolve_target, system_resolver
from shared.errors import InvalidInput

log = structlog.get_logger("hearth.notifications.push")


class Outcome(Enum):
    SENT = "sent"
    GONE = "gone"
    RETRY = "retry"
    FAILED = "failed"


def _by_status(status: int) -> Outcome:
    if status < 300:
        return Outcome.SENT
    if status in (404, 410):
        return Outcome.GONE
    if status == 429 or status >= 500 or status == 408:
        return Outcome.RETRY
    return Outcome.FAILED


class WebPush:
    """RFC 8030 push with an aes128gcm-encrypted payload and a VAPID (RFC 8292) signature."""

    TTL = 86400

    def __init__(self, settings: Settings, client: httpx.AsyncClient):
        from py_vapid import Vapid
        key = settings.vapid_private_key.strip()
        self.vapid = Vapid.from_pem(key.encode()) if key.startswith("-----") else Vapid.from_raw(key.encode())
        self.subject, self.timeout = settings.vapid_subject, settings.push_timeout_seconds
        self.client, self.allow_private = client, settings.webhook_allow_private_targets
        self.resolver: Resolver = system_resolver

    def _encode(self, device: Device, message: dict) -> tuple[bytes, dict]:
        from pywebpush import WebPusher
        endpoint = urlsplit(device.token)
        claims = {"sub": self.subject, "aud": f"{endpoint.scheme}://{endpoint.netloc}",
                  "exp": int(time.time()) + 12 * 3600}
        subscription = {"endpoint": device.token, "keys": {"p256dh": device.p256dh, "auth": device.auth}}
        body = WebPusher(subscription).encode(json.dumps(message).encode(), "aes128gcm")["body"]
        return body, {"Content-Encoding": "aes128gcm", "TTL": str(self.TTL), **self.vapid.sign(claims)}

    async def send(self, device: Device, message: dict) -> Outcome:
        # The endpoint is a URL the subscriber chose: checked and pinned like a webhook's at every send
        # (it was checked at registration, but its name may resolve elsewhere now).
        try:
            target = await resolve_target(device.token, allow_private=self.allow_private, resolver=self.resolver)
        except UnresolvableTarget:  # DNS trouble may pass
            return Outcome.RETRY
        except InvalidInput as exc:  # it points inside now: not a push service
            log.info("web push endpoint refused", error=exc.detail)
            return Outcome.GONE
        url, pinned_headers, extensions = target.pinned()
        try:
            body, headers = await asyncio.to_thread(self._encode, device, message)  # encryption and signing: CPU
        except Exception as exc:  # a subscription whose keys cannot be used
            log.info("web push not encrypted", error=repr(exc))
            return Outcome.FAILED
        try:
            response = await self.client.post(url, content=body, headers={**headers, **pinned_headers},
                                              extensions=extensions, timeout=self.timeout, follow_redirects=False)
        except httpx.HTTPError as exc:  # network trouble
            log.info("web push failed", error=repr(exc))
            return Outcome.RETRY
        return _by_status(response.status_code)


class FCM:
    """Firebase Cloud Messaging HTTP v1, authorised by an OAuth2 token from the service account's signed JWT."""

    SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

    def __init__(self, settings: Settings, client: httpx.AsyncClient):
        self.account = json.loads(settings.fcm_service_account_json)
        self.url = f"{settings.fcm_endpoint.rstrip('/')}/v1/projects/{settings.fcm_project_id}/messages:send"
        self.client, self.timeout = client, settings.push_timeout_seconds
        self._token: str | None = None
        self._expires = 0.0

    async def _access_token(self) -> str:
        if self._token and time.time() < self._expires - 60:
            return self._token
        now = int(time.time())
        claims = {"iss": self.account["client_email"], "scope": self.SCOPE, "aud": self.account["token_uri"],
                  "iat": now, "exp": now + 3600}
        assertion = await asyncio.to_thread(jwt.encode, claims, self.account["private_key"], algorithm="RS256",
                                            headers={"kid": self.account.get("private_key_id")})
        response = await self.client.post(self.account["token_uri"], timeout=self.timeout, data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
        response.raise_for_status()
        body = response.json()
        self._token, self._expires = body["access_token"], time.time() + float(body.get("expires_in", 3600))
        return self._token

    async def send(self, device: Device, message: dict) -> Outcome:
        payload = {"message": {"token": device.token,
                               "notification": {"title": message["title"], "body": message["body"]},
                               "data": {k: str(v) for k, v in message["data"].items() if v is not None}}}
        try:
            token = await self._access_token()
            response = await self.client.post(self.url, json=payload, timeout=self.timeout,
                                              headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            log.info("fcm send failed", error=repr(exc))
            return Outcome.RETRY
        if response.status_code == 401:
            self._token = None  # expired early: the next attempt fetches a new one
            return Outcome.RETRY
        if response.status_code == 400 and "INVALID_ARGUMENT" in response.text and "token" in response.text.lower():
            return Outcome.GONE  # not a registration token FCM knows
        return _by_status(response.status_code)


class APNs:
    """Apple Push Notification service over HTTP/2 with a token (.p8) key, through aioapns."""

    def __init__(self, settings: Settings):
        import ssl

        from aioapns import APNs as Client
        context = ssl.create_default_context(cafile=settings.apns_ca_file or None)
        self.client = Client(key=settings.apns_key, key_id=settings.apns_key_id, team_id=settings.apns_team_id,
                             topic=settings.apns_topic, use_sandbox=settings.apns_use_sandbox, ssl_context=context,
                             max_connection_attempts=2)
        if settings.apns_endpoint:
            # aioapns dials the protocol class's APNS_SERVER:APNS_PORT (its proxy option fails on Python 3.11:
            # it hands asyncio's TransportSocket to create_connection), so the endpoint goes in a subclass.
            host, _, port = settings.apns_endpoint.rpartition(":")
            pool = self.client.pool
            pool.protocol_class = type("APNsEndpoint", (pool.protocol_class,),
                                       {"APNS_SERVER": host, "APNS_PORT": int(port)})

    async def send(self, device: Device, message: dict) -> Outcome:
        from aioapns import NotificationRequest
        aps = {"alert": {"title": message["title"], "body": message["body"]}, "sound": "default"}
        request = NotificationRequest(device_token=device.token, message={"aps": aps, "hearth": message["data"]})
        try:
            result = await self.client.send_notification(request)
        except Exception as exc:
            log.info("apns send failed", error=repr(exc))
            return Outcome.RETRY
        if result.is_successful:
            return Outcome.SENT
        if str(result.status) == "410" or result.description in ("BadDeviceToken", "Unregistered"):
            return Outcome.GONE
        return _by_status(int(result.status))


def make_providers(settings: Settings, client: httpx.AsyncClient) -> dict:
    """The configured providers by platform; a platform without credentials is skipped (its jobs wait)."""
    providers = {}
    if settings.vapid_private_key:
        providers["web"] = WebPush(settings, client)
    if settings.fcm_project_id and settings.fcm_service_account_json:
        providers["android"] = FCM(settings, client)
    if settings.apns_key and settings.apns_key_id and settings.apns_team_id and settings.apns_topic:
        providers["ios"] = APNs(settings)
    return providers
