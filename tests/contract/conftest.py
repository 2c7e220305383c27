"""The four services served for real (uvicorn on free ports, one thread each) over migrated databases.

Contract tests talk HTTP to them like a client would. They get databases of their own (prefix
hearth_contract_) because what they write is committed, unlike the savepoint-per-test service tests.
"""

import asyncio
import importlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import cache

import httpx
import pytest
import uvicorn

from shared.devstack.stack import SERVICES, drop_databases, prepare_databases

CONTRACT_PREFIX = "hearth_contract_"
ADMIN_EMAIL, ADMIN_PASSWORD = "contract-admin@hearth.local", "contract-admin-password"
SCIM_TOKEN = "contract-scim-token"
# HEARTH_CONTRACT_SERVICES=posts,notifications narrows the run while working on some services.
SERVED = tuple(s for s in os.environ.get("HEARTH_CONTRACT_SERVICES", ",".join(SERVICES)).split(",") if s)


@cache
def service_documents() -> dict[str, dict]:
    """Each service's OpenAPI document, built without a database (used to parametrize at collection)."""
    return {name: importlib.import_module(f"services.{name}.main").create_app().openapi() for name in SERVED}


@dataclass
class LiveStack:
    urls: dict[str, str]
    admin_token: str = ""
    admin_id: str = ""
    servers: list = field(default_factory=list)

    def headers_for(self, path: str) -> dict[str, str]:
        token = SCIM_TOKEN if path.startswith("/scim/v2") else self.admin_token
        return {"Authorization": f"Bearer {token}"}


def _settings(name: str, server_url: str, keys):
    settings_cls = importlib.import_module(f"services.{name}.config").Settings
    extra = {"jwt_private_key": keys.pem.decode(), "admin_email": ADMIN_EMAIL, "admin_password": ADMIN_PASSWORD,
             "scim_token": SCIM_TOKEN,
             # Schemathesis checks that SCIM refuses requests without the token; those failures must
             # not lock the fuzzer out of SCIM (429) for the rest of the run.
             "scim_auth_failures": "1000000/600"} if name == "posts" else {}
    return settings_cls(env="test", database_url=server_url, database_prefix=CONTRACT_PREFIX,
                        jwks_json=keys.jwks_json, run_background=False, log_json=False, log_level="WARNING", **extra)


def _serve(app) -> tuple[uvicorn.Server, threading.Thread, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # the port is ours before uvicorn starts: no free-port race
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("a contract-test service did not start")
        time.sleep(0.02)
    return server, thread, sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_stack(pg_server_url, keys):
    asyncio.run(drop_databases(pg_server_url, [CONTRACT_PREFIX + s for s in SERVICES]))
    prepare_databases(pg_server_url, CONTRACT_PREFIX)
    stack = LiveStack(urls={})
    try:
        for name in sorted(set(SERVED) | {"posts"}):  # posts signs the tokens
            app = importlib.import_module(f"services.{name}.main").create_app(_settings(name, pg_server_url, keys))
            server, thread, port = _serve(app)
            stack.servers.append((server, thread))
            stack.urls[name] = f"http://127.0.0.1:{port}"
        login = httpx.post(f"{stack.urls['posts']}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        login.raise_for_status()
        stack.admin_token = login.json()["access_token"]
        me = httpx.get(f"{stack.urls['posts']}/api/v1/people/me", headers=stack.headers_for("/api"))
        stack.admin_id = me.json()["id"]
        yield stack
    finally:
        for server, _ in stack.servers:
            server.should_exit = True
        for _, thread in stack.servers:
            thread.join(timeout=15)
