"""The shared frame mechanism (shared/realtime.py) on messaging's tables and a real socket server."""

import asyncio
import json
from datetime import timedelta

import pytest
import uvicorn
import websockets
from sqlalchemy import update
from uuid6 import uuid7

from services.messaging.main import create_app
from services.messaging.realtime.models import frames
from shared.devstack.ports import free_port
from shared.realtime import CLOSE_SLOW, CLOSE_TIMEOUT
from tests.messaging.factories import person
from tests.waiting import eventually, until

BOUND = 30.0  # fails a hung test; not a speed check


async def test_each_person_has_a_gapless_sequence_across_writers(session):
    ana, ben = uuid7(), uuid7()
    first = await frames.append(session, recipients=[ana, ben], kind="k", data={"n": 1})
    second = await frames.append(session, recipients=[ben], kind="k", data={"n": 2})
    assert first == {ana: 1, ben: 1} and second == {ben: 2}
    assert [f["data"]["n"] for f in await frames.read(session, person_id=ben, after=0)] == [1, 2]
    assert await frames.read(session, person_id=ben, after=2) == []
    assert await frames.last_seq(session, ana) == 1 and await frames.last_seq(session, uuid7()) == 0


async def test_purge_keeps_the_window_and_the_newest_frames(session):
    ana = uuid7()
    for n in range(1, 8):
        await frames.append(session, recipients=[ana], kind="k", data={"n": n})
    # Frames 1-5 are old; keep_frames=3 keeps 5-7 anyway; 6-7 are recent.
    await session.execute(update(frames.frames).where(frames.frames.c.person_id == ana, frames.frames.c.seq <= 5)
                          .values(created_at=frames.frames.c.created_at - timedelta(hours=1)))
    await frames.purge(session, window=timedelta(minutes=10), keep_frames=3)
    kept = [f["seq"] for f in await frames.read(session, person_id=ana, after=0)]
    assert kept == [5, 6, 7]
    assert await frames.can_resume(session, person_id=ana, after=4, current=7)  # 5.. is all there
    assert not await frames.can_resume(session, person_id=ana, after=3, current=7)  # 4 is gone: refetch
    assert not await frames.can_resume(session, person_id=ana, after=8, current=7)  # from the future
    assert await frames.can_resume(session, person_id=ana, after=7, current=7)


@pytest.fixture
async def server(settings):
    """The messaging app under a real uvicorn on a free port, with a short idle timeout and a tiny queue."""
    app_settings = settings.model_copy(update={"messaging_ws_idle_seconds": 1.5, "messaging_ws_send_queue": 4})
    app = create_app(app_settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           ws_per_message_deflate=False))
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, message="uvicorn to start")
    yield app, f"ws://127.0.0.1:{port}/api/v1/messaging/ws"
    server.should_exit = True
    await task


async def _hello(url, token, **options):
    connection = await websockets.connect(url, **options)
    await connection.send(json.dumps({"type": "hello", "token": token}))
    welcome = json.loads(await asyncio.wait_for(connection.recv(), BOUND))
    assert welcome["type"] == "welcome"
    return connection


async def test_a_silent_client_is_closed_as_idle_and_pings_keep_it_open(server, keys, engine):
    from shared.db import make_sessionmaker
    app, url = server
    someone = await person(make_sessionmaker(engine, service="messaging"))
    silent = await _hello(url, keys.token(someone), ping_interval=None)
    talker = await _hello(url, keys.token(someone), ping_interval=None)
    for _ in range(3):  # 3 x 1 s of app-level pings spans twice the idle timeout
        await talker.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(talker.recv(), BOUND)) == {"type": "pong"}
        await asyncio.sleep(1.0)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(silent.recv(), BOUND)
    assert closed.value.rcvd.code == CLOSE_TIMEOUT
    await talker.close()


async def test_a_client_that_does_not_read_is_disconnected_not_buffered(server, keys, engine):
    from shared.db import make_sessionmaker
    app, url = server
    someone = await person(make_sessionmaker(engine, service="messaging"))
    # A client that stops reading: tiny buffers on its side, so the server's send backs up.
    slow = await _hello(url, keys.token(someone), max_queue=1, ping_interval=None, close_timeout=1)
    hub = app.state.hub
    [conn] = hub.local(someone)
    payload = {"blob": "x" * 60_000}
    for _ in range(2000):
        if conn.closed.is_set():
            break
        hub.send_ephemeral([someone], "bulk", payload)
        await asyncio.sleep(0)
    assert conn.closed.is_set() and conn.close_code == CLOSE_SLOW
    assert conn.queue.qsize() <= conn.settings.send_queue  # memory stayed bounded
    await slow.close()


async def test_the_socket_closes_when_its_token_expires(server, keys, engine):
    from datetime import timedelta
    from shared.db import make_sessionmaker
    from shared.realtime import CLOSE_UNAUTHORIZED
    app, url = server
    someone = await person(make_sessionmaker(engine, service="messaging"))
    short = await _hello(url, keys.token(someone, ttl=timedelta(seconds=4)), ping_interval=None)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        for _ in range(100):  # stay active (the fixture's idle timeout is 1.5 s) until the token runs out
            await short.send(json.dumps({"type": "ping"}))
            await asyncio.wait_for(short.recv(), BOUND)
            await asyncio.sleep(0.5)
    assert closed.value.rcvd.code == CLOSE_UNAUTHORIZED


async def test_a_read_only_token_reads_but_cannot_send_and_other_scopes_are_refused(server, keys, engine):
    from shared.db import make_sessionmaker
    from shared.realtime import CLOSE_FORBIDDEN
    app, url = server
    someone = await person(make_sessionmaker(engine, service="messaging"))
    reader = await _hello(url, keys.token(someone, scopes=["messages:read"]), ping_interval=None)
    await reader.send(json.dumps({"type": "message.send", "to_person_id": str(uuid7()), "body": "x", "id": 1}))
    error = json.loads(await asyncio.wait_for(reader.recv(), BOUND))
    assert error["code"] == "missing-scope" and error["ref"] == 1
    await reader.close()
    other = await websockets.connect(url, ping_interval=None)
    await other.send(json.dumps({"type": "hello", "token": keys.token(someone, scopes=["posts:read"])}))
    assert json.loads(await asyncio.wait_for(other.recv(), BOUND))["code"] == "missing-scope"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(other.recv(), BOUND)
    assert closed.value.rcvd.code == CLOSE_FORBIDDEN


async def test_invalid_frames_before_hello_do_not_extend_the_time_to_authenticate(server, keys):
    app, url = server
    connection = await websockets.connect(url, ping_interval=None)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        for _ in range(100):  # 100 x 0.2 s: far past the 10 s hello deadline if each frame reset it
            await connection.send("nonsense")
            reply = json.loads(await asyncio.wait_for(connection.recv(), BOUND))
            assert reply["type"] == "error"
            await asyncio.sleep(0.2)
    assert closed.value.rcvd.code == CLOSE_TIMEOUT


async def test_a_flooding_client_is_rate_limited_and_stays_connected(server, keys, engine):
    from shared.db import make_sessionmaker
    app, url = server
    someone = await person(make_sessionmaker(engine, service="messaging"))
    connection = await _hello(url, keys.token(someone), ping_interval=None)
    for n in range(60):  # more than the burst (40), faster than the refill
        await connection.send(json.dumps({"type": "ping"}))
    replies = [json.loads(await asyncio.wait_for(connection.recv(), BOUND)) for _ in range(60)]
    limited = [r for r in replies if r["type"] == "error"]
    assert limited and all(r["code"] == "rate-limited" and r["status"] == 429 for r in limited)
    assert sum(r == {"type": "pong"} for r in replies) >= 40

    async def ping():
        await connection.send(json.dumps({"type": "ping"}))
        return json.loads(await asyncio.wait_for(connection.recv(), BOUND))

    # Still usable: once the bucket refills, pings are answered again on the same connection.
    await eventually(ping, lambda reply: reply == {"type": "pong"}, message="a pong after the refill", interval=0.2)
    await connection.close()


async def test_a_long_replay_is_not_mistaken_for_a_slow_client(server, keys, engine):
    from shared.db import make_sessionmaker
    app, url = server  # this server's send queue holds 4 frames
    maker = make_sessionmaker(engine, service="messaging")
    someone = await person(maker)
    async with maker() as session:
        for n in range(300):
            await frames.append(session, recipients=[someone], kind="test.frame", data={"n": n})
        await session.commit()
    connection = await websockets.connect(url, ping_interval=None)
    await connection.send(json.dumps({"type": "hello", "token": keys.token(someone), "last_seq": 0}))
    assert json.loads(await asyncio.wait_for(connection.recv(), BOUND))["type"] == "welcome"
    got = [json.loads(await asyncio.wait_for(connection.recv(), BOUND)) for _ in range(300)]
    assert [f["seq"] for f in got] == list(range(1, 301)) and [f["data"]["n"] for f in got] == list(range(300))
    await connection.close()


async def test_many_reads_in_one_query_answer_each_reader_in_order(session):
    ana, ben, cara = uuid7(), uuid7(), uuid7()
    for n in range(1, 6):
        await frames.append(session, recipients=[ana, ben], kind="k", data={"n": n})
    answers = await frames.read_many(session, [(ana, 0), (ben, 3), (cara, 0), (ana, 4)], limit=3)
    assert [[f["seq"] for f in a] for a in answers] == [[1, 2, 3], [4, 5], [], [5]]
    assert answers[1][0] == {"type": "k", "seq": 4, "data": {"n": 4}}


async def test_typing_in_someone_elses_conversation_is_refused_as_not_found(server, keys, engine):
    from shared.db import make_sessionmaker
    from services.messaging.conversations import service as conversations
    app, url = server
    maker = make_sessionmaker(engine, service="messaging")
    ana, ben, eve = await person(maker), await person(maker), await person(maker)
    async with maker() as session:
        conversation = await conversations.get_or_create_direct(session, me=ana, other=ben)
        await session.commit()
    intruder = await _hello(url, keys.token(eve), ping_interval=None)
    await intruder.send(json.dumps({"type": "typing", "conversation_id": str(conversation.id), "id": 1}))
    answer = json.loads(await asyncio.wait_for(intruder.recv(), BOUND))
    assert answer["type"] == "error" and answer["code"] == "conversation-not-found" and answer["ref"] == 1
    await intruder.send(json.dumps({"type": "ping"}))  # the connection stays usable
    assert json.loads(await asyncio.wait_for(intruder.recv(), BOUND)) == {"type": "pong"}
    await intruder.close()


async def test_a_deactivated_persons_hello_is_refused(server, keys, engine):
    from shared.db import make_sessionmaker
    from shared.realtime import CLOSE_UNAUTHORIZED
    app, url = server
    gone = await person(make_sessionmaker(engine, service="messaging"), active=False)
    connection = await websockets.connect(url)
    await connection.send(json.dumps({"type": "hello", "token": keys.token(gone)}))
    answer = json.loads(await asyncio.wait_for(connection.recv(), BOUND))
    assert answer["type"] == "error" and "deactivated" in answer["detail"]
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(connection.recv(), BOUND)
    assert closed.value.rcvd.code == CLOSE_UNAUTHORIZED


async def test_a_socket_frame_is_one_unit_of_work_committed_only_when_it_succeeds(server, keys, engine):
    from sqlalchemy import func, select
    from shared.db import make_sessionmaker
    from services.messaging.conversations import service as conversations
    from services.messaging.messages.models import Message
    app, url = server
    maker = make_sessionmaker(engine, service="messaging")
    ana, ben = await person(maker), await person(maker)
    async with maker() as session:
        conversation = await conversations.get_or_create_direct(session, me=ana, other=ben)
        await session.commit()
    socket = await _hello(url, keys.token(ana), ping_interval=None)
    send = {"type": "message.send", "conversation_id": str(conversation.id), "body": "hi"}
    # The reply check fails after the message row was written: the frame's transaction rolls back.
    await socket.send(json.dumps(send | {"reply_to_id": str(uuid7()), "id": "bad"}))
    answer = json.loads(await asyncio.wait_for(socket.recv(), BOUND))
    assert answer["type"] == "error" and answer["code"] == "message-not-found" and answer["ref"] == "bad"
    await socket.send(json.dumps(send | {"id": "good"}))
    while (answer := json.loads(await asyncio.wait_for(socket.recv(), BOUND)))["type"] != "message.sent":
        pass
    async with maker() as session:  # another session sees exactly the committed one, at seq 1
        stored = (await session.execute(select(func.count(), func.max(Message.seq))
                                        .where(Message.conversation_id == conversation.id))).one()
    assert tuple(stored) == (1, 1) and answer["data"]["seq"] == 1 and answer["ref"] == "good"
    await socket.close()


async def test_a_plain_socket_send_stores_the_message_its_frames_and_its_event_together(server, keys, engine):
    """The socket's common case skips the ORM (messages.send_plain): the same rows as the general path."""
    from sqlalchemy import func, select
    from shared.db import make_sessionmaker
    from shared.events import Envelope
    from shared.outbox import outbox_table
    from services.messaging.conversations import service as conversations
    from services.messaging.messages.models import Message
    app, url = server
    maker = make_sessionmaker(engine, service="messaging")
    ana, ben, eve = await person(maker), await person(maker), await person(maker)
    async with maker() as session:
        conversation = await conversations.get_or_create_direct(session, me=ana, other=ben)
        await session.commit()
    socket = await _hello(url, keys.token(ana), ping_interval=None)
    send = {"type": "message.send", "conversation_id": str(conversation.id), "body": "*hi*", "client_msg_id": "c1"}

    async def answer(ws, kind):
        while (frame := json.loads(await asyncio.wait_for(ws.recv(), BOUND)))["type"] not in (kind, "error"):
            pass
        return frame

    await socket.send(json.dumps(send | {"id": 1}))
    first = await answer(socket, "message.sent")
    assert first["ref"] == 1 and first["data"]["created"] is True and first["data"]["seq"] == 1
    assert first["data"]["body_html"] == "<p><em>hi</em></p>\n" and first["data"]["sender_id"] == str(ana)
    # A retry of the same client_msg_id answers with the first message (the general path), nothing twice.
    await socket.send(json.dumps(send | {"id": 2}))
    retry = await answer(socket, "message.sent")
    assert retry["data"]["created"] is False and retry["data"]["id"] == first["data"]["id"]
    async with maker() as session:
        assert await session.scalar(select(func.count()).where(Message.conversation_id == conversation.id)) == 1
        for member in (ana, ben):
            [stored] = [f for f in await frames.read(session, person_id=member, after=0)
                        if f["type"] == "message.created"]
            assert stored["data"]["id"] == first["data"]["id"] and stored["data"]["seq"] == 1
        events = (await session.execute(select(outbox_table.c.payload)
                                        .where(outbox_table.c.key == str(conversation.id)))).scalars().all()
    sent = [Envelope.from_bytes(e) for e in events if b"hearth.message.sent" in e]
    assert len(sent) == 1 and sent[0].source == "messaging" and sent[0].actor == ana
    payload = sent[0].payload()  # what every consumer reads: the typed payload, members filled in
    assert str(payload.message_id) == first["data"]["id"] and payload.excerpt == "*hi*"
    assert sorted(payload.recipients) == sorted([ana, ben])
    # Someone else's conversation: refused as not found, and nothing is written.
    intruder = await _hello(url, keys.token(eve), ping_interval=None)
    await intruder.send(json.dumps(send | {"client_msg_id": "e1", "id": 3}))
    refused = await answer(intruder, "message.sent")
    assert refused["type"] == "error" and refused["code"] == "conversation-not-found" and refused["ref"] == 3
    async with maker() as session:
        assert await session.scalar(select(func.count()).where(Message.conversation_id == conversation.id)) == 1
    await socket.close()
    await intruder.close()
