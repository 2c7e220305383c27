"""Email digests over real SMTP (aiosmtpd on a free port)."""

from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

from uuid6 import uuid7

from services.notifications.digests.service import send_due
from shared.db import utcnow
from shared.devstack.ports import free_port
from shared.events import GroupCreated, GroupMemberAdded, GroupSnapshot, PostCreated
from tests.notifications.builders import add_person, mail_settings, send

WEDNESDAY_0830_UTC = datetime(2026, 11, 25, 8, 30, tzinfo=timezone.utc)  # 09:30 in Paris, 03:30 in New York


async def daily_person(client, keys, settings, sessionmaker, zone="Europe/Paris", **fields):
    person = await add_person(settings, sessionmaker, **fields)
    response = await client.patch("/api/v1/notifications/preferences", headers=keys.headers(person),
                                  json={"digest": "daily", "time_zone": zone})
    assert response.status_code == 200
    return person


def mention(author, person, excerpt):
    return PostCreated(post_id=uuid7(), author_id=author, kind="update", audience="company", excerpt=excerpt,
                       mentions=[person], created_at=utcnow())


async def test_daily_digest_has_text_html_and_one_click_unsubscribe_and_is_sent_once(
        settings, sessionmaker, client, keys, smtp):
    controller, inbox = smtp
    mail = mail_settings(settings, controller)
    ana = await daily_person(client, keys, settings, sessionmaker, email="ana@corp.local", display_name="Ana")
    await daily_person(client, keys, settings, sessionmaker, zone="America/New_York", email="nyc@corp.local")
    await add_person(settings, sessionmaker, email="weekly@corp.local")  # weekly by default: Mondays only
    bo = await add_person(settings, sessionmaker, display_name="Bo Chen")
    await send(settings, sessionmaker, mention(bo, ana, "Can you review <the plan>?"))
    group = GroupSnapshot(id=uuid7(), name="Platform", visibility="public", updated_at=utcnow())
    await send(settings, sessionmaker, GroupCreated(group=group))
    await send(settings, sessionmaker, GroupMemberAdded(group_id=group.id, person_id=ana, role="member", via="joined"))
    await send(settings, sessionmaker, PostCreated(post_id=uuid7(), author_id=bo, kind="update", audience="group",
                                                   group_id=group.id, excerpt="Release 2.0 is out",
                                                   created_at=utcnow()))
    assert await send_due(sessionmaker, mail, now=WEDNESDAY_0830_UTC) == 1
    assert await send_due(sessionmaker, mail, now=WEDNESDAY_0830_UTC) == 0  # once per period
    [message] = inbox.messages
    assert message["To"] == "ana@corp.local" and "1 unread" in message["Subject"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text_part = message.get_body(preferencelist=("plain",)).get_content()
    html_part = message.get_body(preferencelist=("html",)).get_content()
    assert "Bo Chen mentioned you: Can you review <the plan>?" in text_part
    assert "Can you review &lt;the plan&gt;?" in html_part and "<the plan>" not in html_part
    assert "[Platform] Release 2.0 is out" in text_part and "Release 2.0 is out" in html_part
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://hearth.example/api/v1/notifications/unsubscribe?token=")
    token = parse_qs(urlsplit(link).query)["token"][0]
    page = await client.get(f"/api/v1/notifications/unsubscribe?token={token}")
    assert page.status_code == 200 and "<form" in page.text
    assert (await client.get("/api/v1/notifications/preferences", headers=keys.headers(ana))).json()["digest"] \
        == "daily"  # looking at the page changes nothing
    done = await client.post(f"/api/v1/notifications/unsubscribe?token={token}", content="List-Unsubscribe=One-Click",
                             headers={"content-type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200
    tampered = await client.post(f"/api/v1/notifications/unsubscribe?token={token[:-2]}AA")
    assert tampered.status_code == 422 and tampered.json()["code"] == "invalid-unsubscribe-token"
    prefs = (await client.get("/api/v1/notifications/preferences", headers=keys.headers(ana))).json()
    assert prefs["digest"] == "off"


async def test_nothing_to_say_sends_nothing_and_smtp_trouble_is_retried(settings, sessionmaker, client, keys, smtp):
    controller, inbox = smtp
    mail = mail_settings(settings, controller)
    quiet = await daily_person(client, keys, settings, sessionmaker, email="quiet@corp.local")
    assert await send_due(sessionmaker, mail, now=WEDNESDAY_0830_UTC) == 0 and inbox.messages == []
    busy = await daily_person(client, keys, settings, sessionmaker, email="busy@corp.local")
    await send(settings, sessionmaker, mention(uuid7(), busy, "ping"))
    down = mail.model_copy(update={"smtp_port": free_port()})
    assert await send_due(sessionmaker, down, now=WEDNESDAY_0830_UTC) == 0
    assert await send_due(sessionmaker, mail, now=WEDNESDAY_0830_UTC) == 1  # the claim was released
    assert [m["To"] for m in inbox.messages] == ["busy@corp.local"]
    assert quiet != busy
