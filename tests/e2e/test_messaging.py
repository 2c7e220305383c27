"""Chat end to end: two messaging replicas, the broker, real sockets (the `websockets` client)."""

import asyncio
import json
from uuid import UUID

import httpx
import pytest
import websockets

from tests.e2e.conftest import ADMIN, eventually
from tests.e2e.messaging_fixtures import Socket, bearer, login, new_person, replica_b, ws_url  # noqa: F401

CONV = "/api/v1/conversations"


@pytest.fixture
async def http(stack):
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def admin_token(http, stack):
    return await login(http, stack, ADMIN["email"], ADMIN["password"])


async def group_of(http, base, creator_token, member_ids, title="Team"):
    """Create a group once messaging's people read model knows everyone (it follows people.v1)."""
    async def attempt():
        return await http.post(f"{base}{CONV}", headers=bearer(creator_token),
                               json={"title": title, "member_ids": [str(m) for m in member_ids]})
    response = await eventually(attempt, lambda r: r.status_code != 422, message="people in messaging's read model")
    assert response.status_code == 201, response.text
    return response.json()


async def send(http, base, token, conversation_id, body, **extra):
    response = await http.post(f"{base}{CONV}/{conversation_id}/messages", headers=bearer(token),
                               json={"body": body, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_message_sent_through_replica_a_reaches_a_socket_on_replica_b(http, stack, replica_b, admin_token):
    a = stack.urls["messaging"]
    (ana, ana_token), (ben, ben_token) = [await new_person(http, stack, admin_token) for _ in range(2)]
    conv = await group_of(http, a, ana_token, [ben["id"]])
    socket = await Socket.open(replica_b, ben_token)
    try:
        sent = await send(http, a, ana_token, conv["id"], "across replicas")
        frame = await socket.next_of("message.created")
        assert frame["data"]["id"] == sent["id"] and frame["data"]["body"] == "across replicas"
        # And the socket way: Ben answers through replica B, Ana's socket on replica A gets it.
        ana_socket = await Socket.open(a, ana_token)
        await socket.send({"type": "message.send", "id": 7, "conversation_id": conv["id"], "body": "back",
                           "client_msg_id": "b-1"})
        ack = await socket.next_of("message.sent")
        assert ack["ref"] == 7 and ack["data"]["created"] is True
        got = await ana_socket.next_of("message.created")
        assert got["data"]["id"] == ack["data"]["id"]
        await ana_socket.close()
    finally:
        await socket.close()


async def test_reconnect_resumes_every_missed_frame_once_in_order(http, stack, replica_b, admin_token):
    a = stack.urls["messaging"]
    (ana, ana_token), (ben, ben_token) = [await new_person(http, stack, admin_token) for _ in range(2)]
    conv = await group_of(http, a, ana_token, [ben["id"]])
    socket = await Socket.open(replica_b, ben_token)
    first = await send(http, a, ana_token, conv["id"], "before the drop")
    assert (await socket.next_of("message.created"))["data"]["id"] == first["id"]
    last_seq = socket.last_seq
    await socket.close()  # the drop

    missed = [(await send(http, a, ana_token, conv["id"], f"while away {i}"))["id"] for i in range(12)]
    resumed = await Socket.open(a, ben_token, last_seq=last_seq)  # the other replica, on purpose
    try:
        assert resumed.welcome["seq"] >= last_seq + 12
        frames = [await resumed.next_of("message.created") for _ in missed]  # recv() asserts seq continuity
        assert [f["data"]["id"] for f in frames] == missed
        live = await send(http, a, ana_token, conv["id"], "after the resume")
        assert (await resumed.next_of("message.created"))["data"]["id"] == live["id"]
    finally:
        await resumed.close()


async def test_a_resume_point_outside_the_window_is_told_to_refetch(http, stack, admin_token):
    (ana, ana_token), = [await new_person(http, stack, admin_token)]
    socket = await Socket.open(stack.urls["messaging"], ana_token, last_seq=10_000_000)
    try:
        refetch = json.loads(await asyncio.wait_for(socket.connection.recv(), 30))
        assert refetch == {"type": "refetch", "seq": socket.welcome["seq"]}
        await socket.send({"type": "ping"})
        assert json.loads(await asyncio.wait_for(socket.connection.recv(), 30)) == {"type": "pong"}
    finally:
        await socket.close()


async def test_read_receipts_reach_the_sender_only_in_small_conversations(http, stack, replica_b, admin_token):
    a = stack.urls["messaging"]
    (ana, ana_token), (ben, ben_token) = [await new_person(http, stack, admin_token) for _ in range(2)]
    small = await group_of(http, a, ana_token, [ben["id"]], title="small")
    crowd = [await new_person(http, stack, admin_token) for _ in range(19)]
    big = await group_of(http, a, ana_token, [ben["id"]] + [p["id"] for p, _ in crowd], title="big")
    assert small["receipts"] is True and big["receipts"] is False
    ana_socket = await Socket.open(a, ana_token)
    ben_socket = await Socket.open(replica_b, ben_token)
    try:
        in_big = await send(http, a, ana_token, big["id"], "to many")
        in_small = await send(http, a, ana_token, small["id"], "to one")
        await ben_socket.send({"type": "read", "conversation_id": big["id"], "message_id": in_big["id"]})
        await ben_socket.next_of("read.ok")
        await ben_socket.send({"type": "read", "conversation_id": small["id"], "message_id": in_small["id"]})
        await ben_socket.next_of("read.ok")
        # Ana's frames are in sequence: the first receipt she gets is the small conversation's.
        receipt = await ana_socket.next_of("conversation.read")
        assert receipt["data"] == {"conversation_id": small["id"], "person_id": ben["id"],
                                   "last_read_message_id": in_small["id"], "seq": in_small["seq"]}
    finally:
        await ana_socket.close()
        await ben_socket.close()


async def test_typing_and_presence_frames_cross_replicas(http, stack, replica_b, admin_token):
    a = stack.urls["messaging"]
    (ana, ana_token), (ben, ben_token) = [await new_person(http, stack, admin_token) for _ in range(2)]
    conv = await group_of(http, a, ana_token, [ben["id"]])
    ana_socket = await Socket.open(a, ana_token)
    try:
        await ana_socket.send({"type": "presence.subscribe", "person_ids": [ben["id"]]})
        snapshot = await ana_socket.next_of("presence.snapshot")
        assert snapshot["data"] == {ben["id"]: "offline"}
        ben_socket = await Socket.open(replica_b, ben_token)
        online = await ana_socket.next_of("presence")
        assert online["data"] == {"person_id": ben["id"], "status": "online"} and "seq" not in online
        await ben_socket.send({"type": "typing", "conversation_id": conv["id"], "typing": True})
        typing = await ana_socket.next_of("typing")
        assert typing["data"] == {"conversation_id": conv["id"], "person_id": ben["id"], "typing": True}
        assert "seq" not in typing  # ephemeral: never stored, never replayed
        await ben_socket.send({"type": "presence", "status": "away"})
        assert (await ana_socket.next_of("presence"))["data"]["status"] == "away"
        await ben_socket.close()
        assert (await ana_socket.next_of("presence"))["data"]["status"] == "offline"
    finally:
        await ana_socket.close()


async def test_a_removed_member_loses_the_conversation_on_an_open_socket(http, stack, replica_b, admin_token):
    a = stack.urls["messaging"]
    (ana, ana_token), (cara, cara_token) = [await new_person(http, stack, admin_token) for _ in range(2)]
    conv = await group_of(http, a, ana_token, [cara["id"]])
    cara_socket = await Socket.open(replica_b, cara_token)
    try:
        removed = await http.delete(f"{a}{CONV}/{conv['id']}/members/{cara['id']}", headers=bearer(ana_token))
        assert removed.status_code == 204
        notice = await cara_socket.next_of("conversation.member_removed")
        assert notice["data"]["person_id"] == cara["id"]
        await send(http, a, ana_token, conv["id"], "not for cara")
        direct = await http.post(f"{a}{CONV}/direct/{cara['id']}/messages", headers=bearer(ana_token),
                                 json={"body": "just you"})
        assert direct.status_code == 201
        # Frames are in sequence: the next message Cara gets is the direct one, never the group's.
        frame = await cara_socket.next_of("message.created")
        assert frame["data"]["id"] == direct.json()["id"]
        await cara_socket.send({"type": "message.send", "conversation_id": conv["id"], "body": "let me in"})
        error = await cara_socket.next_of("error")
        assert error["code"] == "conversation-not-found"
        await cara_socket.send({"type": "typing", "conversation_id": conv["id"]})
        assert (await cara_socket.next_of("error"))["code"] == "conversation-not-found"
    finally:
        await cara_socket.close()


async def test_bad_frames_get_an_error_and_oversize_frames_close_with_1009(http, stack, admin_token):
    a = stack.urls["messaging"]
    (ana, ana_token), = [await new_person(http, stack, admin_token)]
    socket = await Socket.open(a, ana_token)
    try:
        for bad in ("not json", json.dumps([1, 2]), json.dumps({"type": "launch"}),
                    json.dumps({"type": "message.send", "body": ""})):
            await socket.connection.send(bad)
            assert (await socket.next_of("error"))["status"] in (400, 422)
        await socket.send({"type": "ping"})
        assert (await socket.next_of("pong")) == {"type": "pong"}  # still usable
        await socket.connection.send("x" * 70_000)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await socket.recv()
        assert closed.value.rcvd.code == 1009
    finally:
        await socket.close()


async def test_a_socket_without_a_valid_token_is_refused(http, stack):
    connection = await websockets.connect(ws_url(stack.urls["messaging"]))
    await connection.send(json.dumps({"type": "hello", "token": "not-a-token"}))
    error = json.loads(await asyncio.wait_for(connection.recv(), 30))
    assert error["type"] == "error" and error["status"] == 401 and "not-a-token" not in json.dumps(error)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(connection.recv(), 30)
    assert closed.value.rcvd.code == 4401
    _ = UUID
