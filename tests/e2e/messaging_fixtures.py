"""Fixtures for the messaging end-to-end tests: a second messaging replica and socket helpers."""

import asyncio
import json
from itertools import count

import pytest
import websockets

from shared.devstack.ports import free_port
from shared.devstack.stack import ServiceProcess
from tests.e2e.conftest import ADMIN, E2E_PREFIX

_seq = count(1)
RECV_BOUND = 30.0  # a bound so that a lost frame fails the test instead of hanging it; not a speed check


@pytest.fixture(scope="session")
def replica_b(stack, tmp_path_factory):
    """Another messaging process on the same database and broker (the same environment as the stack's)."""
    env = {"HEARTH_DATABASE_URL": stack.server_url, "HEARTH_DATABASE_PREFIX": E2E_PREFIX,
           "HEARTH_KAFKA_BOOTSTRAP": stack.broker.bootstrap, "HEARTH_KAFKA_FETCH_MAX_WAIT_MS": "20",
           "HEARTH_JWKS_URL": f"{stack.urls['posts']}/.well-known/jwks.json", "HEARTH_ENV": "test",
           "HEARTH_DATABASE_POOL_SIZE": "3", "HEARTH_ADMIN_EMAIL": ADMIN["email"],
           "HEARTH_ADMIN_PASSWORD": ADMIN["password"]}
    process = ServiceProcess("messaging", free_port(), env, log_file=tmp_path_factory.mktemp("replica-b") / "b.log")
    process.start()
    try:
        process.wait_healthy(timeout=60)
        yield process.url
    finally:
        process.stop()


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/api/v1/messaging/ws"


class Socket:
    """A chat socket client: hello with the token in the first frame, then frames as dicts."""

    def __init__(self, connection, welcome: dict):
        self.connection, self.welcome = connection, welcome
        self.last_seq = welcome["seq"]

    @classmethod
    async def open(cls, base_url: str, token: str, last_seq: int | None = None, **options) -> "Socket":
        connection = await websockets.connect(ws_url(base_url), **options)
        await connection.send(json.dumps({"type": "hello", "token": token, "last_seq": last_seq}))
        welcome = json.loads(await asyncio.wait_for(connection.recv(), RECV_BOUND))
        assert welcome["type"] == "welcome", welcome
        socket = cls(connection, welcome)
        if last_seq is not None:
            socket.last_seq = last_seq
        return socket

    async def send(self, frame: dict) -> None:
        await self.connection.send(json.dumps(frame))

    async def recv(self) -> dict:
        frame = json.loads(await asyncio.wait_for(self.connection.recv(), RECV_BOUND))
        if "seq" in frame:
            assert frame["seq"] == self.last_seq + 1, (frame, self.last_seq)  # in order, none lost, none doubled
            self.last_seq = frame["seq"]
        return frame

    async def next_of(self, *types: str) -> dict:
        """The next frame of one of `types`, skipping others (presence, typing and acks interleave)."""
        while True:
            frame = await self.recv()
            if frame["type"] in types:
                return frame

    async def close(self) -> None:
        await self.connection.close()


async def login(http, stack, email, password) -> str:
    response = await http.post(f"{stack.urls['posts']}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def new_person(http, stack, admin_token) -> tuple[dict, str]:
    n = next(_seq)
    email = f"e2e.chat{n}@corp.local"
    response = await http.post(f"{stack.urls['posts']}/api/v1/people", headers=bearer(admin_token),
                               json={"email": email, "display_name": f"Chat {n}", "password": "e2e-password"})
    assert response.status_code == 201, response.text
    return response.json(), await login(http, stack, email, "e2e-password")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
