"""Helpers for the notifications end-to-end tests: people, posts and the notification socket."""

import asyncio
import json
from itertools import count

import websockets

from tests.e2e.conftest import ADMIN

_seq = count(1)
RECV_BOUND = 30.0  # a lost frame fails the test instead of hanging it; not a speed check


async def login(http, stack, email: str, password: str) -> dict:
    response = await http.post(f"{stack.urls['posts']}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def admin(http, stack) -> dict:
    return await login(http, stack, ADMIN["email"], ADMIN["password"])


async def new_person(http, stack, admin_headers) -> tuple[dict, dict]:
    n = next(_seq)
    email = f"e2e.notify{n}@corp.local"
    response = await http.post(f"{stack.urls['posts']}/api/v1/people", headers=admin_headers,
                               json={"email": email, "display_name": f"Notify {n}", "password": "e2e-password"})
    assert response.status_code == 201, response.text
    return response.json(), await login(http, stack, email, "e2e-password")


async def post(http, stack, headers, body: str, **fields) -> dict:
    response = await http.post(f"{stack.urls['posts']}/api/v1/posts", headers=headers,
                               json={"body": body} | fields)
    assert response.status_code == 201, response.text
    return response.json()


class NotificationSocket:
    def __init__(self, connection, welcome: dict):
        self.connection, self.welcome, self.last_seq = connection, welcome, welcome["seq"]

    @classmethod
    async def open(cls, stack, headers: dict, last_seq: int | None = None) -> "NotificationSocket":
        url = stack.urls["notifications"].replace("http://", "ws://") + "/api/v1/notifications/ws"
        connection = await websockets.connect(url)
        token = headers["Authorization"].split()[1]
        await connection.send(json.dumps({"type": "hello", "token": token, "last_seq": last_seq}))
        welcome = json.loads(await asyncio.wait_for(connection.recv(), RECV_BOUND))
        assert welcome["type"] == "welcome", welcome
        socket = cls(connection, welcome)
        if last_seq is not None:
            socket.last_seq = last_seq
        return socket

    async def next_of(self, *types: str) -> dict:
        while True:
            frame = json.loads(await asyncio.wait_for(self.connection.recv(), RECV_BOUND))
            if "seq" in frame:
                assert frame["seq"] == self.last_seq + 1, (frame, self.last_seq)  # in order, none lost or doubled
                self.last_seq = frame["seq"]
            if frame["type"] in types:
                return frame

    async def close(self) -> None:
        await self.connection.close()
