"""Email digests: unread notifications and the top posts of my groups, daily or weekly, over SMTP.

A digest is claimed per person and period in digest_runs before it is sent, so replicas and reruns
never send one twice; a claim left by a crashed sender is taken over after CLAIM_TIMEOUT.
"""

import asyncio
import base64
import hashlib
import hmac
import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Literal
from uuid import UUID

import aiosmtplib
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifications.config import Settings
from services.notifications.inbox.service import VERBS
from services.notifications.preferences.defaults import DEFAULTS
from shared.db import utcnow
from shared.errors import InvalidInput
from shared.events import NotificationsDelivered
from shared.outbox import add_event

log = structlog.get_logger("hearth.notifications.digests")
CLAIM_TIMEOUT = timedelta(minutes=10)
ITEMS_MAX = 20
TOP_POSTS = 5
EMAIL_KINDS_DEFAULT_ON = [k for k, c in DEFAULTS.items() if c.email]


class InvalidUnsubscribeToken(InvalidInput):
    code, title = "invalid-unsubscribe-token", "Invalid unsubscribe link"


# The emails one can leave by a link: what the page calls them. The HMAC covers the list, so a digest's
# link cannot switch message emails off, nor the other way round.
LISTS = {"digest": "digest emails", "messages": "message emails"}
UnsubscribeList = Literal["digest", "messages"]


def unsubscribe_token(secret: str, person_id: UUID, list_: UnsubscribeList = "digest") -> str:
    mac = hmac.new(secret.encode(), f"{list_}-unsubscribe:".encode() + person_id.bytes, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(person_id.bytes + mac).decode().rstrip("=")


def read_unsubscribe_token(secret: str, token: str, list_: UnsubscribeList = "digest") -> UUID:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        person_id = UUID(bytes=raw[:16])
    except (ValueError, TypeError):
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.")
    if len(raw) != 32 or not hmac.compare_digest(unsubscribe_token(secret, person_id, list_), token.rstrip("=")):
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.")
    return person_id


def unsubscribe_link(settings: Settings, person_id: UUID, list_: UnsubscribeList = "digest") -> str:
    query = f"token={unsubscribe_token(settings.unsubscribe_secret, person_id, list_)}"
    if list_ != "digest":  # digest links already sent out have no `list`: they stay valid
        query += f"&list={list_}"
    return f"{settings.public_base_url.rstrip('/')}/api/v1/notifications/unsubscribe?{query}"


def add_unsubscribe(message: EmailMessage, link: str) -> None:
    """The one-click unsubscribe headers (RFC 8058): mail clients POST `List-Unsubscribe=One-Click` to `link`."""
    message["List-Unsubscribe"] = f"<{link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


@dataclass
class Digest:
    person_id: UUID
    email: str
    name: str
    frequency: str
    period: str
    notifications: list[dict]
    top_posts: list[dict]


# Due: past digest_hour in the person's zone (weekly: on Mondays), no finished run for this period.
# Computed in SQL so that a pass over 10,000 people reads only those whose digest is due.
_CANDIDATES = text("""
WITH people AS (
    SELECT d.id, d.email, d.display_name, COALESCE(s.digest, 'weekly') AS frequency,
           CAST(:now AS timestamptz) AT TIME ZONE COALESCE(s.time_zone, 'UTC') AS local
    FROM directory_people d LEFT JOIN notification_settings s ON s.person_id = d.id
    WHERE d.active AND COALESCE(s.digest, 'weekly') <> 'off'
), periods AS (
    SELECT *, CASE frequency WHEN 'daily' THEN to_char(local, 'YYYY-MM-DD') ELSE to_char(local, 'IYYY-"W"IW') END
              AS period
    FROM people WHERE extract(hour FROM local) >= :hour AND (frequency = 'daily' OR extract(isodow FROM local) = 1)
)
SELECT p.* FROM periods p
WHERE NOT EXISTS (SELECT 1 FROM digest_runs r WHERE r.person_id = p.id AND r.period = p.period
                  AND (r.status <> 'sending' OR r.created_at >= CAST(:now AS timestamptz) - CAST(:timeout AS interval)))
LIMIT :limit
""")

_CLAIM = text("""
INSERT INTO digest_runs (person_id, period, status, created_at) VALUES (:person, :period, 'sending', now())
ON CONFLICT (person_id, period) DO UPDATE SET created_at = now()
    WHERE digest_runs.status = 'sending' AND digest_runs.created_at < now() - CAST(:timeout AS interval)
RETURNING person_id
""")

_UNREAD = text("""
SELECT n.kind, n.excerpt, n.actor_count, n.updated_at, a.display_name AS actor
FROM notifications n LEFT JOIN directory_people a ON a.id = n.actor_id
WHERE n.recipient_id = :person AND n.read_at IS NULL AND n.updated_at >= :since
  AND COALESCE((SELECT p.email FROM notification_preferences p WHERE p.person_id = n.recipient_id
                AND p.kind = n.kind), n.kind = ANY(CAST(:email_kinds AS varchar[])))
ORDER BY n.updated_at DESC LIMIT :limit
""")

_TOP_POSTS = text("""
SELECT p.id, p.excerpt, p.reactions, p.comments, g.name AS group_name
FROM known_posts p JOIN group_members m ON m.group_id = p.group_id AND m.person_id = :person
JOIN known_groups g ON g.id = p.group_id
WHERE p.created_at >= :since AND p.author_id <> :person
ORDER BY p.reactions + 2 * p.comments DESC, p.created_at DESC LIMIT :limit
""")


async def claim_due(session: AsyncSession, *, now: datetime, settings: Settings, limit: int) -> list[Digest]:
    """Claim the digests due now and gather what goes in them."""
    timeout = CLAIM_TIMEOUT
    rows = (await session.execute(_CANDIDATES, {"now": now, "hour": settings.digest_hour, "limit": limit,
                                                "timeout": timeout})).all()
    due = []
    for row in rows:
        claimed = await session.scalar(_CLAIM, {"person": row.id, "period": row.period, "timeout": timeout})
        if claimed is None:
            continue  # another replica got it first
        since = now - (timedelta(days=1) if row.frequency == "daily" else timedelta(days=7))
        unread = (await session.execute(_UNREAD, {"person": row.id, "since": since, "limit": ITEMS_MAX,
                                                  "email_kinds": EMAIL_KINDS_DEFAULT_ON})).mappings().all()
        top = (await session.execute(_TOP_POSTS, {"person": row.id, "since": since, "limit": TOP_POSTS}))
        due.append(Digest(row.id, row.email, row.display_name, row.frequency, row.period, [dict(r) for r in unread],
                          [dict(r) for r in top.mappings().all()]))
    # The worker owns this session (no request): the claims must be committed before the SMTP sends.
    await session.commit()
    return due


def render(digest: Digest, settings: Settings) -> EmailMessage:
    """The message with text and HTML parts and a one-click unsubscribe (RFC 8058)."""
    link = unsubscribe_link(settings, digest.person_id)
    lines, items = [], []
    for n in digest.notifications:
        who = n["actor"] or "Someone"
        if n["actor_count"] > 1:
            who += f" and {n['actor_count'] - 1} others"
        line = f"{who} {VERBS.get(n['kind'], n['kind'])}" + (f": {n['excerpt']}" if n["excerpt"] else "")
        lines.append(f"- {line}")
        items.append(f"<li>{html.escape(line)}</li>")
    posts_text = [f"- [{p['group_name']}] {p['excerpt']} ({p['reactions']} reactions, {p['comments']} comments)"
                  for p in digest.top_posts]
    posts_html = [f"<li><b>{html.escape(p['group_name'])}</b>: {html.escape(p['excerpt'])}</li>"
                  for p in digest.top_posts]
    when = "today" if digest.frequency == "daily" else "this week"
    message = EmailMessage()
    message["Subject"] = f"Hearth: {len(digest.notifications)} unread notifications {when}"
    message["From"] = settings.smtp_from
    message["To"] = digest.email
    add_unsubscribe(message, link)
    body = [f"Hello {digest.name},", "", f"Unread {when}:", *(lines or ["- nothing new"])]
    if posts_text:
        body += ["", "Top posts in your groups:", *posts_text]
    body += ["", f"Unsubscribe from these emails: {link}"]
    message.set_content("\n".join(body))
    top = f"<h3>Top posts in your groups</h3><ul>{''.join(posts_html)}</ul>" if posts_html else ""
    message.add_alternative(
        f"<html><body><p>Hello {html.escape(digest.name)},</p><h3>Unread {when}</h3>"
        f"<ul>{''.join(items) or '<li>nothing new</li>'}</ul>{top}"
        f"<p><a href=\"{html.escape(link)}\">Unsubscribe from these emails</a></p></body></html>", subtype="html")
    return message


async def _finish(session: AsyncSession, digest: Digest, status: str | None) -> None:
    if status is None:  # sending failed: release the claim so the next pass retries
        await session.execute(text("DELETE FROM digest_runs WHERE person_id = :p AND period = :period"),
                              {"p": digest.person_id, "period": digest.period})
    else:
        await session.execute(text("UPDATE digest_runs SET status = :s WHERE person_id = :p AND period = :period"),
                              {"s": status, "p": digest.person_id, "period": digest.period})
        if status == "sent":
            await add_event(session, NotificationsDelivered(kind="digest", channel="email",
                                                            recipients=[digest.person_id]), subject=digest.person_id)
    await session.commit()  # the worker's own session, one per digest: each outcome is saved on its own


async def send_due(sessionmaker: async_sessionmaker, settings: Settings, *, now: datetime | None = None) -> int:
    """One pass: claim due digests, render them off the loop, send over SMTP. Returns how many were sent."""
    async with sessionmaker() as session:
        due = await claim_due(session, now=now or utcnow(), settings=settings, limit=settings.worker_batch)
    sent = 0
    for digest in due:
        if not digest.notifications and not digest.top_posts:
            async with sessionmaker() as session:
                await _finish(session, digest, "empty")
            continue
        message = await asyncio.to_thread(render, digest, settings)
        try:
            await aiosmtplib.send(message, hostname=settings.smtp_host, port=settings.smtp_port,
                                  username=settings.smtp_username or None, password=settings.smtp_password or None,
                                  start_tls=settings.smtp_starttls, timeout=30)
            status = "sent"
            sent += 1
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("digest not sent; will retry", error=repr(exc))
            status = None
        async with sessionmaker() as session:
            await _finish(session, digest, status)
    return sent


async def unsubscribe(session: AsyncSession, *, token: str, settings: Settings,
                      list_: UnsubscribeList = "digest") -> None:
    """Digests off, or the `message` kind's email channel off (its other channels as they were)."""
    person_id = read_unsubscribe_token(settings.unsubscribe_secret, token, list_)
    if list_ == "digest":
        await session.execute(text("""
            INSERT INTO notification_settings (person_id, time_zone, digest) VALUES (:p, 'UTC', 'off')
            ON CONFLICT (person_id) DO UPDATE SET digest = 'off'"""), {"p": person_id})
        return
    defaults = DEFAULTS["message"]
    await session.execute(text("""
        INSERT INTO notification_preferences (person_id, kind, in_app, push, email)
        VALUES (:p, 'message', :in_app, :push, false)
        ON CONFLICT (person_id, kind) DO UPDATE SET email = false"""),
        {"p": person_id, "in_app": defaults.in_app, "push": defaults.push})


async def run_worker(sessionmaker: async_sessionmaker, settings: Settings, stop: asyncio.Event) -> None:
    """Supervised; a pass a minute is plenty for daily and weekly mail."""
    while not stop.is_set():
        await send_due(sessionmaker, settings)
        try:
            await asyncio.wait_for(stop.wait(), timeout=60)
        except TimeoutError:
            pass
