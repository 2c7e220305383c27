"""A new message is pushed (never an inbox row) to members messaging does not see online."""

from datetime import timedelta

from sqlalchemy import func, select
from uuid6 import uuid7

from services.notifications.inbox.messaging import messaging_consumer
from services.notifications.inbox.models import Notification
from services.notifications.push.models import PushJob
from services.notifications.digests.messages import send_due
from shared.db import utcnow
from shared.events import ConversationRead, Envelope, MessageDeleted, MessageSent, PresenceChanged
from tests.notifications.builders import add_person, inbox, mail_settings


async def consume(settings, sessionmaker, payload, at=None):
    envelope = Envelope.wrap(payload, source="messaging", subject=uuid7())
    if at is not None:
        envelope = envelope.model_copy(update={"time": at})
    consumer = messaging_consumer(settings)
    await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])


async def pushed_to(sessionmaker) -> set:
    async with sessionmaker() as session:
        return set(await session.scalars(select(PushJob.person_id)))


async def test_message_pushes_to_members_not_online_and_never_to_the_sender(settings, sessionmaker, client, keys):
    sender, online, away, unknown, muted = (uuid7() for _ in range(5))
    conversation = uuid7()
    for person in (sender, online, away, unknown, muted):
        await client.post("/api/v1/notifications/devices", headers=keys.headers(person),
                          json={"platform": "android", "token": f"t-{person}"})
    await client.put(f"/api/v1/notifications/mutes/conversation/{conversation}", headers=keys.headers(muted))
    now = utcnow()
    await consume(settings, sessionmaker, PresenceChanged(person_id=online, status="online"), at=now)
    await consume(settings, sessionmaker, PresenceChanged(person_id=away, status="online"), at=now)
    await consume(settings, sessionmaker, PresenceChanged(person_id=away, status="away"), at=now + timedelta(seconds=1))
    # an old event replayed late must not bring "online" back
    await consume(settings, sessionmaker, PresenceChanged(person_id=away, status="online"), at=now - timedelta(1))
    await consume(settings, sessionmaker, MessageSent(
        message_id=uuid7(), conversation_id=conversation, sender_id=sender, excerpt="Lunch at 12?",
        created_at=now, recipients=[sender, online, away, unknown, muted]))
    assert await pushed_to(sessionmaker) == {away, unknown}
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 0  # push only
        job = await session.scalar(select(PushJob).where(PushJob.person_id == away))
    assert job.body == "Lunch at 12?" and job.data["conversation_id"] == str(conversation)


async def test_mentioned_members_get_one_mention_each_within_their_mutes_and_preferences(settings, sessionmaker,
                                                                                        client, keys):
    sender, ana, muted, quiet_kind, outsider, dan = (uuid7() for _ in range(6))
    conversation = uuid7()
    for person in (sender, ana, muted, quiet_kind, outsider, dan):
        await client.post("/api/v1/notifications/devices", headers=keys.headers(person),
                          json={"platform": "android", "token": f"t-{person}"})
    await client.put(f"/api/v1/notifications/mutes/conversation/{conversation}", headers=keys.headers(muted))
    await client.put("/api/v1/notifications/preferences/kinds/mention", headers=keys.headers(quiet_kind),
                     json={"in_app": False, "push": False, "email": False})
    message = MessageSent(message_id=uuid7(), conversation_id=conversation, sender_id=sender, excerpt="@ana look",
                          created_at=utcnow(), recipients=[sender, ana, muted, quiet_kind, dan],
                          mentions=[ana, ana, sender, muted, quiet_kind, outsider])
    envelope = Envelope.wrap(message, source="messaging", subject=conversation)
    consumer = messaging_consumer(settings)
    assert await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])
    assert not await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])
    [row] = await inbox(client, keys, ana)
    assert (row["kind"], row["subject_type"], row["subject_id"], row["conversation_id"]) == (
        "mention", "message", str(message.message_id), str(conversation))
    for nobody in (sender, muted, quiet_kind, outsider, dan):
        assert await inbox(client, keys, nobody) == [], nobody
    async with sessionmaker() as session:
        jobs = {(j.person_id, j.data["kind"]) for j in await session.scalars(select(PushJob))}
    # one push each: the mention for ana (not also "new message"), the message for dan; none for the others
    assert jobs == {(ana, "mention"), (dan, "message")}


async def test_a_deleted_message_takes_its_mentions_away(settings, sessionmaker, client, keys):
    sender, ana = uuid7(), uuid7()
    message = MessageSent(message_id=uuid7(), conversation_id=uuid7(), sender_id=sender, excerpt="@ana",
                          created_at=utcnow(), recipients=[sender, ana], mentions=[ana])
    await consume(settings, sessionmaker, message)
    assert len(await inbox(client, keys, ana)) == 1
    await consume(settings, sessionmaker, MessageDeleted(message_id=message.message_id,
                                                         conversation_id=message.conversation_id, deleted_by=sender))
    assert await inbox(client, keys, ana) == []


def sent(conversation, sender, recipients, excerpt):
    return MessageSent(message_id=uuid7(), conversation_id=conversation, sender_id=sender, excerpt=excerpt,
                       created_at=utcnow(), recipients=recipients)


async def test_new_messages_are_emailed_once_per_conversation_per_window_to_members_not_online(
        settings, sessionmaker, client, keys, smtp):
    controller, mailbox = smtp
    mail = mail_settings(settings, controller)
    window = timedelta(minutes=settings.message_email_minutes)
    sender = await add_person(settings, sessionmaker, display_name="Sam Sender")
    ana = await add_person(settings, sessionmaker, display_name="Ana", email="ana@corp.local")
    online = await add_person(settings, sessionmaker, email="online@corp.local")
    no_email = await add_person(settings, sessionmaker, email="no-email@corp.local")
    await client.put("/api/v1/notifications/preferences/kinds/message", headers=keys.headers(no_email),
                     json={"in_app": False, "push": True, "email": False})
    await consume(settings, sessionmaker, PresenceChanged(person_id=online, status="online"))
    first, second = uuid7(), uuid7()
    members = [sender, ana, online, no_email]
    for n in range(7):
        await consume(settings, sessionmaker, sent(first, sender, members, f"line {n}"))
    await consume(settings, sessionmaker, sent(second, sender, members, "other chat"))
    started = utcnow()
    assert await send_due(sessionmaker, mail, now=started + window - timedelta(minutes=1)) == 0  # still batching
    assert await send_due(sessionmaker, mail, now=started + window + timedelta(seconds=5)) == 2
    by_subject = {m["Subject"]: m for m in mailbox.messages}
    assert set(by_subject) == {"Hearth: 7 new messages from Sam Sender", "Hearth: 1 new message from Sam Sender"}
    assert {m["To"] for m in mailbox.messages} == {"ana@corp.local"}
    batch = by_subject["Hearth: 7 new messages from Sam Sender"]
    text_part = batch.get_body(preferencelist=("plain",)).get_content()
    assert "line 1" not in text_part and all(f"Sam Sender: line {n}" in text_part for n in range(2, 7))  # newest 5
    assert "and 2 more" in text_part and batch.get_body(preferencelist=("html",)) is not None
    assert await send_due(sessionmaker, mail, now=started + 3 * window) == 0  # nothing twice
    # after an email, the next message waits a whole window again
    await consume(settings, sessionmaker, sent(first, sender, members, "again"))
    assert await send_due(sessionmaker, mail, now=utcnow() + window - timedelta(minutes=1)) == 0
    assert await send_due(sessionmaker, mail, now=utcnow() + window + timedelta(seconds=5)) == 1
    assert len(mailbox.messages) == 3


async def test_a_conversation_read_before_its_email_is_due_is_not_emailed(settings, sessionmaker, client, keys, smtp):
    controller, mailbox = smtp
    mail = mail_settings(settings, controller)
    window = timedelta(minutes=settings.message_email_minutes)
    sender = await add_person(settings, sessionmaker)
    ana = await add_person(settings, sessionmaker, email="ana@corp.local")
    conversation = uuid7()
    last = None
    for n in range(2):
        last = sent(conversation, sender, [sender, ana], f"hi {n}")
        await consume(settings, sessionmaker, last)
    await consume(settings, sessionmaker, ConversationRead(conversation_id=conversation, person_id=ana,
                                                           last_read_message_id=last.message_id))
    assert await send_due(sessionmaker, mail, now=utcnow() + 2 * window) == 0
    assert mailbox.messages == []


async def test_quiet_hours_hold_a_message_email_until_they_end(settings, sessionmaker, client, keys, smtp):
    from datetime import time
    from services.notifications.digests.models import MessageEmail
    controller, mailbox = smtp
    mail = mail_settings(settings, controller)
    window = timedelta(minutes=settings.message_email_minutes)
    sender = await add_person(settings, sessionmaker)
    ana = await add_person(settings, sessionmaker, email="ana@corp.local")
    now = utcnow()
    start, end = time((now.hour + 23) % 24), time((now.hour + 2) % 24)
    await client.patch("/api/v1/notifications/preferences", headers=keys.headers(ana),
                       json={"time_zone": "UTC", "quiet_start": start.isoformat(), "quiet_end": end.isoformat()})
    conversation = uuid7()
    await consume(settings, sessionmaker, sent(conversation, sender, [sender, ana], "late night"))
    assert await send_due(sessionmaker, mail, now=utcnow() + window + timedelta(seconds=5)) == 0
    async with sessionmaker() as session:
        held = await session.get(MessageEmail, (ana, conversation))
    assert held.count == 1 and held.due_at.time().replace(tzinfo=None) == end and held.due_at > now
    assert await send_due(sessionmaker, mail, now=held.due_at + timedelta(minutes=1)) == 1
    [message] = mailbox.messages
    assert "late night" in message.get_body(preferencelist=("plain",)).get_content()


async def test_an_email_the_smtp_server_refused_is_sent_on_a_later_pass_with_what_arrived_meanwhile(
        settings, sessionmaker, client, keys, smtp):
    from shared.devstack.ports import free_port
    controller, mailbox = smtp
    mail = mail_settings(settings, controller)
    down = mail.model_copy(update={"smtp_port": free_port()})
    window = timedelta(minutes=settings.message_email_minutes)
    sender = await add_person(settings, sessionmaker, display_name="Sam")
    ana = await add_person(settings, sessionmaker, email="ana@corp.local")
    conversation = uuid7()
    await consume(settings, sessionmaker, sent(conversation, sender, [sender, ana], "first"))
    assert await send_due(sessionmaker, down, now=utcnow() + window + timedelta(seconds=5)) == 0
    await consume(settings, sessionmaker, sent(conversation, sender, [sender, ana], "second"))
    assert await send_due(sessionmaker, mail, now=utcnow() + timedelta(minutes=2)) == 1
    [message] = mailbox.messages
    assert message["Subject"] == "Hearth: 2 new messages from Sam"
    text_part = message.get_body(preferencelist=("plain",)).get_content()
    assert text_part.index("Sam: first") < text_part.index("Sam: second")


async def test_leaving_a_conversation_takes_its_mentions_and_pending_email_away(settings, sessionmaker, client, keys,
                                                                                 smtp):
    from shared.events import ConversationMemberRemoved
    controller, mailbox = smtp
    sender = await add_person(settings, sessionmaker)
    ana = await add_person(settings, sessionmaker, email="ana@corp.local")
    conversation = uuid7()
    await consume(settings, sessionmaker, MessageSent(
        message_id=uuid7(), conversation_id=conversation, sender_id=sender, excerpt="@ana", created_at=utcnow(),
        recipients=[sender, ana], mentions=[ana]))
    await consume(settings, sessionmaker, sent(conversation, sender, [sender, ana], "and more"))
    assert len(await inbox(client, keys, ana)) == 1
    await consume(settings, sessionmaker, ConversationMemberRemoved(conversation_id=conversation, person_id=ana,
                                                                    left=True))
    assert await inbox(client, keys, ana) == []
    window = timedelta(minutes=settings.message_email_minutes)
    assert await send_due(sessionmaker, mail_settings(settings, controller), now=utcnow() + 2 * window) == 0
    assert mailbox.messages == []


async def test_a_message_email_has_a_one_click_unsubscribe_that_turns_message_emails_off(
        settings, sessionmaker, client, keys, smtp):
    from urllib.parse import parse_qs, urlsplit
    from services.notifications.digests.service import unsubscribe_token
    controller, mailbox = smtp
    mail = mail_settings(settings, controller)
    window = timedelta(minutes=settings.message_email_minutes)
    sender = await add_person(settings, sessionmaker)
    ana = await add_person(settings, sessionmaker, email="ana@corp.local")
    conversation = uuid7()
    await consume(settings, sessionmaker, sent(conversation, sender, [sender, ana], "hello"))
    assert await send_due(sessionmaker, mail, now=utcnow() + window + timedelta(seconds=5)) == 1
    [message] = mailbox.messages
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://hearth.example/api/v1/notifications/unsubscribe?")
    assert link in message.get_body(preferencelist=("plain",)).get_content()
    query = parse_qs(urlsplit(link).query)
    token, path = query["token"][0], "/api/v1/notifications/unsubscribe"
    assert query["list"] == ["messages"]
    # the HMAC covers which emails: this token cannot stop digests, nor a digest's token message emails
    assert (await client.post(f"{path}?token={token}")).status_code == 422
    digest_token = unsubscribe_token(settings.unsubscribe_secret, ana)
    assert (await client.post(f"{path}?token={digest_token}&list=messages")).status_code == 422
    page = await client.get(f"{path}?token={token}&list=messages")
    assert page.status_code == 200 and "message emails" in page.text
    prefs = (await client.get("/api/v1/notifications/preferences", headers=keys.headers(ana))).json()
    assert prefs["kinds"]["message"]["email"] is True  # looking at the page changes nothing
    done = await client.post(f"{path}?token={token}&list=messages", content="List-Unsubscribe=One-Click",
                             headers={"content-type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200
    prefs = (await client.get("/api/v1/notifications/preferences", headers=keys.headers(ana))).json()
    assert prefs["kinds"]["message"] == {"in_app": False, "push": True, "email": False}  # push stays on
    assert prefs["digest"] == "weekly"
    await consume(settings, sessionmaker, sent(conversation, sender, [sender, ana], "again"))
    assert await send_due(sessionmaker, mail, now=utcnow() + 2 * window) == 0 and len(mailbox.messages) == 1


class WorkerDied(BaseException):
    """The process going away mid-pass (not an error the worker could catch)."""


async def test_a_sender_that_dies_between_claim_and_send_loses_nothing_and_nothing_is_sent_twice(
        settings, sessionmaker, client, keys, smtp, monkeypatch):
    import aiosmtplib
    from services.notifications.digests.messages import LEASE
    from services.notifications.digests.models import MessageEmail
    controller, mailbox = smtp
    mail = mail_settings(settings, controller)
    window = timedelta(minutes=settings.message_email_minutes)
    sender = await add_person(settings, sessionmaker, display_name="Sam")
    ana = await add_person(settings, sessionmaker, email="ana@corp.local")
    conversation = uuid7()
    await consume(settings, sessionmaker, sent(conversation, sender, [sender, ana], "before the crash"))
    due = utcnow() + window + timedelta(seconds=5)

    async def die(*args, **kwargs):
        raise WorkerDied()
    with monkeypatch.context() as patched:
        patched.setattr(aiosmtplib, "send", die)
        try:
            await send_due(sessionmaker, mail, now=due)
        except WorkerDied:
            pass
        else:
            raise AssertionError("the pass should have died in the SMTP call")
    async with sessionmaker() as session:
        claimed = await session.get(MessageEmail, (ana, conversation))
    assert claimed.sending is not None and claimed.sending_until > due  # claimed, leased, not lost
    await consume(settings, sessionmaker, sent(conversation, sender, [sender, ana], "after the crash"))
    # while the lease holds nobody else sends it (the dead sender might still be at it)
    assert await send_due(sessionmaker, mail, now=due + timedelta(minutes=1)) == 0 and mailbox.messages == []
    after_lease = due + LEASE + timedelta(seconds=1)
    assert await send_due(sessionmaker, mail, now=after_lease) == 1
    [message] = mailbox.messages
    assert message["To"] == "ana@corp.local" and message["Subject"] == "Hearth: 1 new message from Sam"
    assert "Sam: before the crash" in message.get_body(preferencelist=("plain",)).get_content()
    # the message that came meanwhile is its own email; marked sent, neither is ever sent again
    assert await send_due(sessionmaker, mail, now=after_lease) == 1
    assert "Sam: after the crash" in mailbox.messages[1].get_body(preferencelist=("plain",)).get_content()
    assert "before" not in mailbox.messages[1].get_body(preferencelist=("plain",)).get_content()
    for later in (after_lease, after_lease + 3 * (LEASE + window)):
        assert await send_due(sessionmaker, mail, now=later) == 0
    assert len(mailbox.messages) == 2


async def test_an_email_its_dead_sender_left_is_not_sent_once_the_conversation_was_read(
        settings, sessionmaker, client, keys, smtp, monkeypatch):
    import aiosmtplib
    from services.notifications.digests.messages import LEASE
    controller, mailbox = smtp
    mail = mail_settings(settings, controller)
    sender = await add_person(settings, sessionmaker)
    ana = await add_person(settings, sessionmaker, email="ana@corp.local")
    conversation = uuid7()
    message = sent(conversation, sender, [sender, ana], "hi")
    await consume(settings, sessionmaker, message)
    due = utcnow() + timedelta(minutes=settings.message_email_minutes, seconds=5)

    async def die(*args, **kwargs):
        raise WorkerDied()
    with monkeypatch.context() as patched:
        patched.setattr(aiosmtplib, "send", die)
        try:
            await send_due(sessionmaker, mail, now=due)
        except WorkerDied:
            pass
    await consume(settings, sessionmaker, ConversationRead(conversation_id=conversation, person_id=ana,
                                                           last_read_message_id=message.message_id))
    assert await send_due(sessionmaker, mail, now=due + LEASE + timedelta(seconds=1)) == 0
    assert mailbox.messages == []


async def test_a_message_deleted_while_its_email_was_being_sent_is_not_in_the_email_sent_again(
        settings, sessionmaker, client, keys, smtp, monkeypatch):
    import aiosmtplib
    from services.notifications.digests.messages import LEASE
    controller, mailbox = smtp
    mail = mail_settings(settings, controller)
    sender = await add_person(settings, sessionmaker, display_name="Sam")
    ana = await add_person(settings, sessionmaker, email="ana@corp.local")
    conversation = uuid7()
    kept, regretted = (sent(conversation, sender, [sender, ana], text) for text in ("kept", "regretted"))
    for message in (kept, regretted):
        await consume(settings, sessionmaker, message)
    due = utcnow() + timedelta(minutes=settings.message_email_minutes, seconds=5)

    async def die(*args, **kwargs):
        raise WorkerDied()
    with monkeypatch.context() as patched:
        patched.setattr(aiosmtplib, "send", die)
        try:
            await send_due(sessionmaker, mail, now=due)
        except WorkerDied:
            pass
    await consume(settings, sessionmaker, MessageDeleted(message_id=regretted.message_id, conversation_id=conversation,
                                                         deleted_by=sender))
    assert await send_due(sessionmaker, mail, now=due + LEASE + timedelta(seconds=1)) == 1
    [email] = mailbox.messages
    text_part = email.get_body(preferencelist=("plain",)).get_content()
    assert email["Subject"] == "Hearth: 1 new message from Sam"
    assert "Sam: kept" in text_part and "regretted" not in text_part

