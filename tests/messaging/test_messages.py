"""Messages over REST: dedupe by client_msg_id, Markdown, replies, edits with history, tombstones,
reactions, history both ways and around the unread marker, search in my own conversations."""

import asyncio

import asyncpg
from sqlalchemy import text
from uuid6 import uuid7

from services.messaging.conversations.service import get_or_create_direct
from services.messaging.messages import service as messages
from shared.db import make_sessionmaker
from shared.testing import outbox_events
from tests.waiting import until
from tests.messaging.factories import people
from tests.messaging.test_conversations import API, group, send


async def test_a_retried_client_msg_id_returns_the_first_message(client, keys, sessionmaker, session):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])
    body = {"body": "once", "client_msg_id": "phone-1:42"}
    first = await client.post(f"{API}/{conv['id']}/messages", headers=keys.headers(ana), json=body)
    again = await client.post(f"{API}/{conv['id']}/messages", headers=keys.headers(ana), json=body)
    assert first.status_code == 201 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert len(await outbox_events(session, type="hearth.message.sent")) == 1
    # The same id from someone else is their own message.
    other = await client.post(f"{API}/{conv['id']}/messages", headers=keys.headers(ben), json=body)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


async def test_markdown_is_sanitized_and_limits_hold(client, keys, sessionmaker):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])
    message = await send(client, keys, ana, conv["id"], "<script>alert(1)</script> [x](javascript:alert(1)) *ok*")
    assert "<script" not in message["body_html"] and "href=\"javascript" not in message["body_html"]
    assert "<em>ok</em>" in message["body_html"]
    h = keys.headers(ana)
    for bad in ({"body": ""}, {"body": "x" * 4001}, {"body": "nul \u0000 byte"}, {"body": "x", "client_msg_id": "has space"},
                {"body": "x", "client_msg_id": "y" * 65}, {"body": "x", "unknown": 1}):
        response = await client.post(f"{API}/{conv['id']}/messages", headers=h, json=bad)
        assert response.status_code == 422, bad
    assert (await client.post(f"{API}/{conv['id']}/messages", headers=h, json={"body": "x" * 4000})).status_code == 201


async def test_reply_must_point_into_the_same_conversation(client, keys, sessionmaker):
    ana, ben = await people(sessionmaker, 2)
    one, two = await group(client, keys, ana, [ben]), await group(client, keys, ana, [ben])
    parent = await send(client, keys, ana, one["id"], "question?")
    reply = await send(client, keys, ben, one["id"], "answer", reply_to_id=parent["id"])
    assert reply["reply_to_id"] == parent["id"]
    crossed = await client.post(f"{API}/{two['id']}/messages", headers=keys.headers(ben),
                                json={"body": "x", "reply_to_id": parent["id"]})
    assert crossed.status_code == 404 and crossed.json()["code"] == "message-not-found"


async def test_edit_keeps_history_and_only_the_sender_edits(client, keys, sessionmaker, session):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])
    message = await send(client, keys, ana, conv["id"], "first")
    url = f"{API}/{conv['id']}/messages/{message['id']}"
    assert (await client.patch(url, headers=keys.headers(ben), json={"body": "hijack"})).status_code == 403
    for text in ("second", "third"):
        edited = await client.patch(url, headers=keys.headers(ana), json={"body": text})
        assert edited.status_code == 200 and edited.json()["edited_at"] is not None
    history = (await client.get(f"{url}/edits", headers=keys.headers(ben))).json()
    assert [h["body"] for h in history] == ["first", "second"]
    assert len(await outbox_events(session, type="hearth.message.edited")) == 2


async def test_delete_leaves_a_tombstone_in_order(client, keys, sessionmaker, session):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])
    ids = [(await send(client, keys, ana, conv["id"], f"m{i}"))["id"] for i in range(3)]
    url = f"{API}/{conv['id']}/messages/{ids[1]}"
    assert (await client.delete(url, headers=keys.headers(ben))).status_code == 403
    assert (await client.delete(url, headers=keys.headers(ana))).status_code == 204
    items = (await client.get(f"{API}/{conv['id']}/messages", headers=keys.headers(ben))).json()["items"]
    assert [i["id"] for i in items] == ids and items[1]["deleted"] is True and items[1]["body"] == ""
    assert (await client.patch(url, headers=keys.headers(ana), json={"body": "undo"})).status_code == 422
    assert (await client.get(f"{url}/edits", headers=keys.headers(ana))).json() == []
    [event] = await outbox_events(session, type="hearth.message.deleted")
    assert event.data["message_id"] == ids[1]


async def test_reactions_are_counted_per_emoji_and_idempotent(client, keys, sessionmaker, session):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])
    message = await send(client, keys, ana, conv["id"])
    url = f"{API}/{conv['id']}/messages/{message['id']}/reactions"
    await client.put(f"{url}/👍", headers=keys.headers(ana))
    again = await client.put(f"{url}/👍", headers=keys.headers(ben))
    await client.put(f"{url}/👍", headers=keys.headers(ben))
    assert again.json() == [{"emoji": "👍", "count": 2, "mine": True}]
    assert (await client.delete(f"{url}/👍", headers=keys.headers(ben))).json() == [{"emoji": "👍", "count": 1, "mine": False}]
    assert (await client.put(f"{url}/{'x' * 33}", headers=keys.headers(ben))).status_code == 422
    assert len(await outbox_events(session, type="hearth.message.reaction_added")) == 2


async def test_history_pages_both_ways_and_around_the_unread_marker(client, keys, sessionmaker):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])
    ids = [(await send(client, keys, ana, conv["id"], f"m{i}"))["id"] for i in range(10)]
    h, url = keys.headers(ben), f"{API}/{conv['id']}/messages"
    newest = (await client.get(f"{url}?limit=4", headers=h)).json()
    assert [i["id"] for i in newest["items"]] == ids[6:] and newest["prev_cursor"] is None
    older = (await client.get(f"{url}?limit=4&cursor={newest['next_cursor']}", headers=h)).json()
    assert [i["id"] for i in older["items"]] == ids[2:6]
    oldest = (await client.get(f"{url}?limit=4&cursor={older['next_cursor']}", headers=h)).json()
    assert [i["id"] for i in oldest["items"]] == ids[:2] and oldest["next_cursor"] is None
    forward = (await client.get(f"{url}?limit=4&cursor={oldest['prev_cursor']}", headers=h)).json()
    assert [i["id"] for i in forward["items"]] == ids[2:6] and forward["next_cursor"]

    await client.post(f"{API}/{conv['id']}/read", headers=h, json={"message_id": ids[4]})
    around = (await client.get(f"{url}?limit=4&around=unread", headers=h)).json()
    assert [i["id"] for i in around["items"]] == ids[3:7]
    assert around["next_cursor"] and around["prev_cursor"]
    by_id = (await client.get(f"{url}?limit=2&around={ids[0]}", headers=h)).json()
    assert [i["id"] for i in by_id["items"]] == ids[:2]
    assert (await client.get(f"{url}?around=somewhere", headers=h)).status_code == 422
    assert (await client.get(f"{url}?cursor=bm9wZQ", headers=h)).status_code == 422


async def test_search_finds_only_my_conversations_messages(client, keys, sessionmaker):
    ana, ben, mallory = await people(sessionmaker, 3)
    mine = await group(client, keys, ana, [ben], title="Rocket")
    theirs = await group(client, keys, mallory, [], title="Secret")
    await send(client, keys, ana, mine["id"], "the launch window opens friday")
    await send(client, keys, mallory, theirs["id"], "launch codes are 1234")
    deleted = await send(client, keys, ana, mine["id"], "launch rehearsal cancelled")
    await client.delete(f"{API}/{mine['id']}/messages/{deleted['id']}", headers=keys.headers(ana))
    hits = (await client.get(f"{API}/messages/search?q=launch", headers=keys.headers(ben))).json()["items"]
    assert [h["body"] for h in hits] == ["the launch window opens friday"] and hits[0]["conversation_title"] == "Rocket"
    assert (await client.get(f"{API}/messages/search?q=", headers=keys.headers(ben))).status_code == 422


async def test_a_member_added_later_starts_with_nothing_unread(client, keys, sessionmaker):
    ana, ben, cara = await people(sessionmaker, 3)
    conv = await group(client, keys, ana, [ben])
    await send(client, keys, ana, conv["id"], "before cara")
    await client.post(f"{API}/{conv['id']}/members", headers=keys.headers(ana), json={"person_ids": [str(cara)]})
    assert (await client.get(f"{API}/unread", headers=keys.headers(cara))).json()["unread"] == 0
    await send(client, keys, ana, conv["id"], "after cara")
    assert (await client.get(f"{API}/unread", headers=keys.headers(cara))).json()["unread"] == 1
    _ = uuid7


async def _blocked_on_a_lock(engine) -> bool:
    async with engine.connect() as connection:
        return await connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")) > 0


async def _racing_its_original(engine, retry):
    """The original send holds its transaction open until `retry` (the same client_msg_id) waits on it; then
    it commits. Returns the original message and what the retry gave."""
    committed = make_sessionmaker(engine, service="messaging")  # real transactions, as two requests have
    ana, ben = await people(committed, 2)
    async with committed() as session:
        conversation = await get_or_create_direct(session, me=ana, other=ben)
        await session.commit()
    async with committed() as original_session:
        original, created = await messages.send(original_session, conversation_id=conversation.id, sender_id=ana,
                                                body="once", client_msg_id="phone-1:7")
        assert created
        racing = asyncio.create_task(retry(conversation.id, ana))
        await until(lambda: _blocked_on_a_lock(engine), message="the retry to wait for the original's transaction")
        await original_session.commit()
    return original, await asyncio.wait_for(racing, 20)


async def test_a_retry_racing_its_original_gets_the_first_message(engine):
    async def retry(conversation_id, sender_id):
        async with make_sessionmaker(engine, service="messaging")() as session:
            message, created = await messages.send(session, conversation_id=conversation_id, sender_id=sender_id,
                                                   body="once", client_msg_id="phone-1:7")
            await session.commit()
            return message.id, created

    original, (message_id, created) = await _racing_its_original(engine, retry)
    assert (message_id, created) == (original.id, False)  # the first message, not a 409 nor a second one


async def test_a_plain_socket_send_racing_its_original_leaves_the_answer_to_the_general_path(engine, settings):
    pool = await asyncpg.create_pool(settings.service_database_url.replace("postgresql+asyncpg", "postgresql"),
                                     min_size=1, max_size=1)
    try:
        async def retry(conversation_id, sender_id):
            return await messages.send_plain(pool, service="messaging", conversation_id=conversation_id,
                                             sender_id=sender_id, body="once", client_msg_id="phone-1:7")

        original, plain = await _racing_its_original(engine, retry)
    finally:
        await pool.close()
    assert plain is None  # nothing written, nothing raised: the socket handler then answers as a retry
    async with make_sessionmaker(engine, service="messaging")() as session:
        again, created = await messages.send(session, conversation_id=original.conversation_id,
                                             sender_id=original.sender_id, body="once", client_msg_id="phone-1:7")
    assert (again.id, created) == (original.id, False)
