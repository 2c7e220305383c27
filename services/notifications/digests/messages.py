"""New messages by email, batched: one email per member and conversation per window (like Slack).

The rule (notifications cannot see messaging's sockets, only its presence events and read markers):
- a member whose presence is `online` (an active chat socket) gets nothing: they see the message live;
- the others (away = socket open but idle, offline, or unknown here) get a push at once (preferences and
  quiet hours permitting), and the message joins their pending email for that conversation;
- that email goes out `message_email_minutes` after the first message it holds, unless their read marker
  (`hearth.conversation.read`) passed its last message by then; messages arriving meanwhile join it;
  after an email the next one waits a whole window again, so a busy conversation sends at most one
  email per window. Quiet hours hold it until they end.
Sending claims a due batch under a lease (FOR UPDATE SKIP LOCKED, as the push worker does: replicas
share the work): the batch moves into `sending`, kept until the email is marked sent. A sender that dies
between claim and mark loses nothing: once its lease runs out the same email is claimed and sent again
(at least once: a crash after the SMTP server took it but before the mark sends it twice; once marked,
never again). Messages arriving meanwhile start the next batch.
"""

import asyncio
import html
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from uuid import UUID

import aiosmtplib
import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifications.config import Settings
from services.notifications.digests.service import add_unsubscribe, unsubscribe_link
from services.notifications.inbox.service import wants
from services.notifications.preferences.defaults import DEFAULTS
from services.notifications.preferences.models import PersonSettings
from services.notifications.preferences.service import quiet_until
from shared.db import utcnow
from shared.directory import directory_people
from shared.events import NotificationsDelivered
from shared.outbox import add_event

log = structlog.get_logger("hearth.notifications.message_emails")
SHOWN = 5  # messages quoted in one email (the count says how many there were)

_QUEUE = text(f"""
INSERT INTO message_emails (person_id, conversation_id, count, last_message_id, messages, due_at)
SELECT e.person_id, :conversation, 1, :message, jsonb_build_array(CAST(:item AS jsonb)),
       CAST(:now AS timestamptz) + CAST(:window AS interval)
FROM unnest(CAST(:people AS uuid[])) AS e(person_id)
JOIN directory_people d ON d.id = e.person_id AND d.active
WHERE {wants("email", DEFAULTS["message"].email)}
ON CONFLICT (person_id, conversation_id) DO UPDATE SET
    count = message_emails.count + 1,
    last_message_id = EXCLUDED.last_message_id,
    messages = (CASE WHEN jsonb_array_length(message_emails.messages) >= {SHOWN}
                     THEN message_emails.messages - 0 ELSE message_emails.messages END) || EXCLUDED.messages,
    due_at = COALESCE(message_emails.due_at, EXCLUDED.due_at)
""")

_CLEARED = "count = 0, last_message_id = NULL, messages = '[]', due_at = NULL"
LEASE = timedelta(minutes=10)  # a claimed email not marked sent by then is claimed again (its sender died)
PER_PASS = 10  # claimed at once and sent one by one (30 s SMTP timeout each): well within the lease

# A due batch moves into `sending` (pending starts afresh for messages arriving meanwhile) under a lease.
_CLAIM_DUE = text(f"""
UPDATE message_emails SET sending = jsonb_build_object('count', count, 'last_message_id', last_message_id,
                                                       'messages', messages),
                          sending_until = :until, {_CLEARED}
WHERE (person_id, conversation_id) IN (
    SELECT person_id, conversation_id FROM message_emails WHERE due_at <= :now AND sending IS NULL
    ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED)
RETURNING person_id, conversation_id, sending
""")

# An email whose sender's lease ran out (it died between claim and marking it sent) is claimed again as it was.
_CLAIM_ABANDONED = text("""
UPDATE message_emails SET sending_until = :until
WHERE (person_id, conversation_id) IN (
    SELECT person_id, conversation_id FROM message_emails WHERE sending_until <= :now
    ORDER BY sending_until LIMIT :limit FOR UPDATE SKIP LOCKED)
RETURNING person_id, conversation_id, sending
""")

_MARK_SENT = text("UPDATE message_emails SET sending = NULL, sending_until = NULL "
                  "WHERE person_id = :person AND conversation_id = :conversation")

# Not sent after all (quiet hours, SMTP failure): back into the pending batch, merged with what arrived meanwhile.
_RELEASE = text(f"""
UPDATE message_emails SET
    count = count + CAST(sending->>'count' AS int),
    last_message_id = COALESCE(last_message_id, CAST(sending->>'last_message_id' AS uuid)),
    messages = (SELECT COALESCE(jsonb_agg(x ORDER BY n), '[]') FROM (
        SELECT x, n FROM jsonb_array_elements((sending->'messages') || messages) WITH ORDINALITY AS t(x, n)
        ORDER BY n DESC LIMIT {SHOWN}) AS newest),
    due_at = LEAST(COALESCE(due_at, CAST(:due AS timestamptz)), CAST(:due AS timestamptz)),
    sending = NULL, sending_until = NULL
WHERE person_id = :person AND conversation_id = :conversation AND sending IS NOT NULL
""")


async def queue(session: AsyncSession, *, people: list[UUID], conversation_id: UUID, message_id: UUID,
                sender_id: UUID, excerpt: str, window: timedelta) -> None:
    """Add a message to each person's pending email for the conversation (those who want message emails)."""
    if not people:
        return
    item = json.dumps({"message_id": str(message_id), "sender_id": str(sender_id), "excerpt": excerpt[:300]})
    await session.execute(_QUEUE, dict(people=people, conversation=conversation_id, message=message_id, item=item,
                                       now=utcnow(), window=window, kind="message"))


async def read_up_to(session: AsyncSession, *, person_id: UUID, conversation_id: UUID, message_id: UUID) -> None:
    """The person read the conversation up to `message_id` (uuid7: ordered by time): nothing left to email.

    An email being sent that it covers is dropped too: if its sender died, it is not sent again."""
    params = {"p": person_id, "c": conversation_id, "m": message_id}
    await session.execute(text(f"UPDATE message_emails SET {_CLEARED} WHERE person_id = :p AND conversation_id = :c "
                               "AND due_at IS NOT NULL AND last_message_id <= :m"), params)
    await session.execute(text("UPDATE message_emails SET sending = NULL, sending_until = NULL "
                               "WHERE person_id = :p AND conversation_id = :c AND sending IS NOT NULL "
                               "AND CAST(sending->>'last_message_id' AS uuid) <= :m"), params)


async def forget_message(session: AsyncSession, *, conversation_id: UUID, message_id: UUID) -> None:
    """A deleted message is not quoted in an email (nor counted)."""
    await session.execute(text("""
        UPDATE message_emails SET count = GREATEST(count - 1, 0),
            messages = (SELECT COALESCE(jsonb_agg(x ORDER BY n), '[]')
                        FROM jsonb_array_elements(messages) WITH ORDINALITY AS t(x, n)
                        WHERE x->>'message_id' <> CAST(:m AS varchar))
        WHERE conversation_id = :c AND messages @> CAST(:probe AS jsonb)"""),
        {"c": conversation_id, "m": str(message_id), "probe": json.dumps([{"message_id": str(message_id)}])})
    await session.execute(text(f"UPDATE message_emails SET {_CLEARED} WHERE conversation_id = :c AND count = 0 "
                               "AND due_at IS NOT NULL"), {"c": conversation_id})
    # nor in one being sent: if its sender died, or it goes back to wait (quiet hours, SMTP trouble), it comes
    # out without it (left with no message, it is dropped at its next claim)
    await session.execute(text("""
        UPDATE message_emails SET sending = sending || jsonb_build_object(
            'count', GREATEST(CAST(sending->>'count' AS int) - 1, 0),
            'messages', (SELECT COALESCE(jsonb_agg(x ORDER BY n), '[]')
                         FROM jsonb_array_elements(sending->'messages') WITH ORDINALITY AS t(x, n)
                         WHERE x->>'message_id' <> CAST(:m AS varchar)))
        WHERE conversation_id = :c AND sending->'messages' @> CAST(:probe AS jsonb)"""),
        {"c": conversation_id, "m": str(message_id), "probe": json.dumps([{"message_id": str(message_id)}])})


async def forget_member(session: AsyncSession, *, conversation_id: UUID, person_id: UUID) -> None:
    await session.execute(text("DELETE FROM message_emails WHERE person_id = :p AND conversation_id = :c"),
                          {"p": person_id, "c": conversation_id})


@dataclass
class Batch:
    person_id: UUID
    conversation_id: UUID
    email: str
    name: str
    count: int
    last_message_id: UUID | None
    messages: list[dict]


def render(batch: Batch, names: dict[str, str], settings: Settings) -> EmailMessage:
    senders = list(dict.fromkeys(names.get(m["sender_id"], "Someone") for m in batch.messages))
    who = senders[0] if len(senders) == 1 else ", ".join(senders[:-1]) + f" and {senders[-1]}"
    lines = [(names.get(m["sender_id"], "Someone"), m["excerpt"]) for m in batch.messages]
    plural = "s" if batch.count > 1 else ""
    message = EmailMessage()
    message["Subject"] = f"Hearth: {batch.count} new message{plural} from {who}"
    message["From"] = settings.smtp_from
    message["To"] = batch.email
    link = unsubscribe_link(settings, batch.person_id, "messages")  # one click turns message emails off
    add_unsubscribe(message, link)
    more = batch.count - len(lines)
    body = [f"Hello {batch.name},", "", f"You have {batch.count} unread message{plural} from {who}:", "",
            *(f"{name}: {excerpt}" for name, excerpt in lines)]
    if more > 0:
        body.append(f"… and {more} more")
    body += ["", "Open Hearth to reply.", f"Stop emails about new messages: {link}"]
    message.set_content("\n".join(body))
    items = "".join(f"<li><b>{html.escape(name)}</b>: {html.escape(excerpt)}</li>" for name, excerpt in lines)
    message.add_alternative(
        f"<html><body><p>Hello {html.escape(batch.name)},</p>"
        f"<p>You have {batch.count} unread message{plural} from {html.escape(who)}:</p><ul>{items}</ul>"
        + (f"<p>… and {more} more</p>" if more > 0 else "")
        + f"<p><a href=\"{html.escape(link)}\">Stop emails about new messages</a></p></body></html>", subtype="html")
    return message


async def _claim(session: AsyncSession, *, now: datetime, limit: int) -> list[Batch]:
    params = {"now": now, "until": now + LEASE, "limit": limit}
    rows = (await session.execute(_CLAIM_ABANDONED, params)).all() + (await session.execute(_CLAIM_DUE, params)).all()
    people = {r.id: r for r in await session.execute(
        select(directory_people.c.id, directory_people.c.email, directory_people.c.display_name)
        .where(directory_people.c.id.in_({r.person_id for r in rows}), directory_people.c.active))}
    batches = []
    for row in rows:
        if (person := people.get(row.person_id)) is None:  # deactivated meanwhile: nothing to send them
            await session.execute(_MARK_SENT, {"person": row.person_id, "conversation": row.conversation_id})
            continue
        last = row.sending["last_message_id"]
        batches.append(Batch(row.person_id, row.conversation_id, person.email, person.display_name,
                             row.sending["count"], UUID(last) if last else None, list(row.sending["messages"])))
    return batches


async def _release(session: AsyncSession, batch: Batch, due: datetime) -> None:
    await session.execute(_RELEASE, {"person": batch.person_id, "conversation": batch.conversation_id, "due": due})


async def _mark_sent(sessionmaker: async_sessionmaker, batch: Batch) -> None:
    async with sessionmaker() as session:
        await session.execute(_MARK_SENT, {"person": batch.person_id, "conversation": batch.conversation_id})
        await add_event(session, NotificationsDelivered(kind="message", channel="email", recipients=[batch.person_id]),
                        subject=batch.person_id)
        await session.commit()  # the worker's own session, one per email: each one sent is saved on its own


async def send_due(sessionmaker: async_sessionmaker, settings: Settings, *, now: datetime | None = None) -> int:
    """One pass: claim due batches under a lease, hold back quiet hours, send over SMTP, mark each sent.

    A crash between claim and mark loses nothing (the lease runs out and the email is claimed again);
    one marked sent is never sent again. Returns how many emails were sent."""
    now = now or utcnow()
    async with sessionmaker() as session:
        batches = await _claim(session, now=now, limit=min(settings.worker_batch, PER_PASS))
        quiet: dict[UUID, datetime] = {}
        names: dict[str, str] = {}
        if batches:
            rows = await session.scalars(select(PersonSettings).where(
                PersonSettings.person_id.in_({b.person_id for b in batches}), PersonSettings.quiet_start.is_not(None)))
            quiet = {r.person_id: until for r in rows if (until := quiet_until(r, now)) is not None}
            for batch in batches:
                if not batch.messages:  # every message in it was deleted: nothing to say
                    await session.execute(_MARK_SENT, dict(person=batch.person_id, conversation=batch.conversation_id))
                elif batch.person_id in quiet:
                    await _release(session, batch, quiet[batch.person_id])
            senders = {m["sender_id"] for b in batches for m in b.messages}
            names = {str(r.id): r.display_name for r in await session.execute(
                select(directory_people.c.id, directory_people.c.display_name)
                .where(directory_people.c.id.in_([UUID(s) for s in senders])))}
        # The worker owns this session (no request): claims are committed before the SMTP sends.
        await session.commit()
    sent = 0
    for batch in (b for b in batches if b.person_id not in quiet and b.messages):
        message = render(batch, names, settings)
        try:
            await aiosmtplib.send(message, hostname=settings.smtp_host, port=settings.smtp_port,
                                  username=settings.smtp_username or None, password=settings.smtp_password or None,
                                  start_tls=settings.smtp_starttls, timeout=30)
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("message email not sent; will retry", error=repr(exc))
            async with sessionmaker() as session:
                await _release(session, batch, utcnow() + timedelta(minutes=1))
                await session.commit()  # the worker's own session
            continue
        await _mark_sent(sessionmaker, batch)
        sent += 1
    return sent


async def run_worker(sessionmaker: async_sessionmaker, settings: Settings, stop: asyncio.Event) -> None:
    """Supervised; batches fall due minutes apart, so a pass every few seconds is plenty."""
    while not stop.is_set():
        if await send_due(sessionmaker, settings):
            continue
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(settings.worker_poll_seconds, 5.0))
        except TimeoutError:
            pass
