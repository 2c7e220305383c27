"""Outgoing webhooks: subscriptions, SSRF-safe targets, signed deliveries with retries, auto-disable."""

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import httpx
import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifications.config import Settings
from services.notifications.webhooks.models import Webhook, WebhookDelivery
from services.notifications.webhooks.schemas import WebhookCreate
from shared.auth import CurrentUser, MissingScope
from shared.db import utcnow
from shared.errors import Forbidden, InvalidInput, NotFound
from shared.events import EVENT_TYPES, Envelope
from shared.pagination import PageParams, paginate

log = structlog.get_logger("hearth.notifications.webhooks")

# The read scope an event type needs, by the topic it travels on (activity.v1 is not offered: analytics only).
TOPIC_SCOPES = {"social": "posts:read", "people": "people:read", "messaging": "messages:read",
                "notifications": "notifications:read"}
SIGNATURE_HEADER = "X-Hearth-Signature"
TIMESTAMP_HEADER = "X-Hearth-Timestamp"


class WebhookNotFound(NotFound):
    code, title = "webhook-not-found", "Webhook not found"


class UnsafeWebhookTarget(InvalidInput):
    code, title = "unsafe-webhook-target", "Webhook target not allowed"


class UnresolvableTarget(UnsafeWebhookTarget):
    """The host does not resolve (now): refused like an unsafe one, but a sender may retry later."""


class WebhooksForAdminsOnly(Forbidden):
    code, title = "webhooks-admin-only", "Only admins manage webhooks"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over `<timestamp>.<body>`: a receiver checks both, so a captured delivery is not replayable later."""
    return "v1=" + hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def scope_for(event_type: str) -> str:
    model = EVENT_TYPES.get(event_type)
    if model is None or model.TOPIC not in TOPIC_SCOPES:
        raise InvalidInput(f"Unknown or unavailable event type {event_type!r}.", field="event_types")
    return TOPIC_SCOPES[model.TOPIC]


# host, port -> the addresses it resolves to (a parameter so tests can answer differently each time)
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


@dataclass(frozen=True)
class Target:
    """A checked URL and the address it resolved to: the connection goes there, with no second lookup."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    def pinned(self) -> tuple[str, dict, dict]:
        """(URL with the address as host, headers, httpx extensions): TLS still names and verifies `host`.

        The client pools connections by address, not name: an https connection verified for one name
        must not carry a delivery for another name on the same address, so it is not kept open."""
        ip = ipaddress.ip_address(self.address)
        parts = urlsplit(self.url)
        netloc = f"[{ip}]" if ip.version == 6 else str(ip)
        default = 443 if self.scheme == "https" else 80
        pinned = urlunsplit((self.scheme, f"{netloc}:{self.port}", parts.path or "/", parts.query, ""))
        host = f"[{self.host}]" if ":" in self.host else self.host
        extensions = {"sni_hostname": self.host} if self.scheme == "https" else {}
        headers = {"Host": host if self.port == default else f"{host}:{self.port}"}
        if self.scheme == "https":
            headers["Connection"] = "close"
        return pinned, headers, extensions


async def resolve_target(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> Target:
    """Only http(s) to public addresses: the host is resolved once and every address it gives is checked.

    The caller connects to `Target.address`: a name that answers a public address to this check and a
    private one to the connection's own lookup (DNS rebinding) never gets a second lookup."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeWebhookTarget("The URL is not valid.", field="url")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeWebhookTarget("The URL must be http(s) with a host.", field="url")
    if parts.username or parts.password:
        raise UnsafeWebhookTarget("Credentials in the URL are not allowed; verify the signature instead.", field="url")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        found = await resolver(parts.hostname, port)
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
    except (OSError, UnicodeError, ValueError):  # socket.gaierror is an OSError
        raise UnresolvableTarget("The host does not resolve.", field="url")
    if not addresses:
        raise UnresolvableTarget("The host does not resolve.", field="url")
    if not allow_private and any(not a.is_global or a.is_multicast for a in addresses):
        raise UnsafeWebhookTarget("The host resolves to a private, loopback or reserved address.", field="url")
    return Target(url=url, scheme=parts.scheme, host=parts.hostname, port=port, address=str(addresses[0]))


async def check_target(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
    await resolve_target(url, allow_private=allow_private, resolver=resolver)


async def create(session: AsyncSession, *, user: CurrentUser, data: WebhookCreate, settings: Settings) -> Webhook:
    if not user.has_role("admin"):
        raise WebhooksForAdminsOnly("Webhooks see company-wide events; only admins create them.")
    types = list(dict.fromkeys(data.event_types))
    for event_type in types:
        scope = scope_for(event_type)
        if user.scopes is not None and scope not in user.scopes:
            raise MissingScope(f"Subscribing to {event_type} needs the scope {scope}.", required_scope=scope)
    await check_target(data.url, allow_private=settings.webhook_allow_private_targets)
    webhook = Webhook(owner_id=user.id, url=data.url, description=data.description, event_types=types,
                      secret=secrets.token_hex(32))
    session.add(webhook)
    return webhook


async def get_all(session: AsyncSession, *, owner_id: UUID) -> list[Webhook]:
    return list(await session.scalars(select(Webhook).where(Webhook.owner_id == owner_id).order_by(Webhook.created_at)))


async def get_own_or_raise(session: AsyncSession, *, webhook_id: UUID, owner_id: UUID) -> Webhook:
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None or webhook.owner_id != owner_id:
        raise WebhookNotFound()
    return webhook


async def set_active(session: AsyncSession, *, webhook: Webhook, active: bool) -> Webhook:
    webhook.active = active
    if active:
        webhook.consecutive_failures, webhook.disabled_reason = 0, None
    return webhook


async def delete(session: AsyncSession, *, webhook: Webhook) -> None:
    await session.delete(webhook)


async def get_deliveries(session: AsyncSession, *, webhook_id: UUID, page: PageParams):
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    return await paginate(session, stmt, columns=[WebhookDelivery.created_at, WebhookDelivery.id], page=page)


async def enqueue(session: AsyncSession, envelope: Envelope, payload=None) -> None:
    """A consumed event becomes one pending delivery per active webhook subscribed to its type."""
    await session.execute(text("""
        INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, body, status, attempts,
            next_attempt_at, created_at)
        SELECT gen_random_uuid(), w.id, :event_id, :event_type, :body, 'pending', 0, now(), clock_timestamp()
        FROM webhooks w WHERE w.active AND CAST(:event_type AS varchar) = ANY(w.event_types)
        ON CONFLICT (webhook_id, event_id) DO NOTHING"""),
        {"event_id": envelope.id, "event_type": envelope.type, "body": envelope.model_dump_json()})


# --- delivery worker --------------------------------------------------------------------------------------

async def claim_due(session: AsyncSession, *, limit: int, lease: timedelta) -> list[tuple[WebhookDelivery, Webhook]]:
    """Due deliveries of active webhooks, leased so another replica's worker skips them (SKIP LOCKED)."""
    rows = (await session.execute(
        select(WebhookDelivery, Webhook).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow(), Webhook.active)
        .order_by(WebhookDelivery.next_attempt_at).limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True))).all()
    for delivery, _ in rows:
        delivery.next_attempt_at = utcnow() + lease  # if this worker dies, the delivery comes back after the lease
    # The worker owns this session (no request): the lease must be committed before the slow HTTP calls.
    await session.commit()
    return [(d, w) for d, w in rows]


async def attempt(client: httpx.AsyncClient, delivery: WebhookDelivery, webhook: Webhook, settings: Settings,
                  resolver: Resolver = system_resolver) -> tuple[int | None, str | None]:
    """POST one delivery; (status code, error). Redirects are not followed (they could point inside).

    The host is resolved and checked again for every delivery (DNS changes after subscribing), and the
    POST goes to that checked address."""
    try:
        target = await resolve_target(webhook.url, allow_private=settings.webhook_allow_private_targets,
                                      resolver=resolver)
    except InvalidInput as exc:
        return None, exc.detail
    url, host_header, extensions = target.pinned()
    body = delivery.body.encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "Hearth-Webhooks/1",
               "X-Hearth-Event": delivery.event_type, "X-Hearth-Delivery": str(delivery.id),
               TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(webhook.secret, timestamp, body),
               **host_header}
    try:
        response = await client.post(url, content=body, headers=headers, extensions=extensions,
                                     timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    except httpx.HTTPError as exc:
        return None, repr(exc)[:500]
    return response.status_code, None if response.is_success else f"HTTP {response.status_code}"


async def record(session: AsyncSession, delivery_id: UUID, webhook_id: UUID, status_code: int | None,
                 error: str | None, settings: Settings) -> None:
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    webhook = await session.get(Webhook, webhook_id, with_for_update=True)
    if delivery is None or webhook is None:
        return  # the webhook was deleted meanwhile
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error = status_code, error
    if error is None:
        delivery.status, delivery.delivered_at = "succeeded", utcnow()
        webhook.consecutive_failures = 0
    else:
        webhook.consecutive_failures += 1
        if delivery.attempts >= settings.webhook_max_attempts:
            delivery.status = "failed"
        else:
            delay = settings.webhook_retry_base_seconds * 2 ** (delivery.attempts - 1)
            delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
        if webhook.consecutive_failures >= settings.webhook_disable_after_failures and webhook.active:
            webhook.active = False
            webhook.disabled_reason = f"disabled after {webhook.consecutive_failures} failed deliveries in a row"
            log.warning("webhook disabled", webhook_id=str(webhook.id))
    # The worker's own session, one per delivery: an outcome is saved even when another's recording fails.
    await session.commit()


async def deliver_due(sessionmaker: async_sessionmaker, client: httpx.AsyncClient, settings: Settings, *,
                      resolver: Resolver = system_resolver) -> int:
    """One pass of the worker: claim, send concurrently, record. Returns how many were attempted."""
    lease = timedelta(seconds=settings.webhook_timeout_seconds * 3)
    async with sessionmaker() as session:
        claimed = await claim_due(session, limit=settings.worker_batch, lease=lease)
    if not claimed:
        return 0
    results = await asyncio.gather(*(attempt(client, d, w, settings, resolver) for d, w in claimed))
    for (delivery, webhook), (status_code, error) in zip(claimed, results):
        async with sessionmaker() as session:
            await record(session, delivery.id, webhook.id, status_code, error, settings)
    return len(claimed)


async def run_worker(sessionmaker: async_sessionmaker, settings: Settings, stop: asyncio.Event) -> None:
    """Supervised: deliver what is due, then wait for the next poll (a crash restarts it; leases make it safe)."""
    async with httpx.AsyncClient() as client:
        while not stop.is_set():
            if await deliver_due(sessionmaker, client, settings):
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=settings.worker_poll_seconds)
            except TimeoutError:
                pass
