import logging
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from uuid6 import uuid7

from services.posts.config import Settings as PostsSettings
from services.posts.content.service import excerpt, parse_hashtags, parse_mentions
from shared.app import RequestContextMiddleware
from shared.context import client_var, parse_client, request_id_var
from shared.errors import InvalidInput, install_error_handlers
from shared.faults import is_transient
from shared.pagination import decode_cursor, encode_cursor

_t = Table("t", MetaData(), Column("created_at", DateTime(timezone=True)), Column("id", PG_UUID(as_uuid=True)))
COLUMNS = [_t.c.created_at, _t.c.id]


def test_cursor_round_trips_and_rejects_tampering():
    values = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC), uuid7()]
    assert decode_cursor(encode_cursor(values), COLUMNS) == values
    for bad in ("garbage", encode_cursor([1]), encode_cursor(["yesterday", "x"])):
        with pytest.raises(InvalidInput):
            decode_cursor(bad, COLUMNS)


def test_client_header_is_normalised():
    assert parse_client("iOS") == "ios"
    assert parse_client("api/zapier-bridge") == "api/zapier-bridge"
    assert parse_client("<script>") == "unknown"
    assert parse_client(None) is None


def test_mentions_hashtags_and_excerpt():
    body = "Thanks @Maria.Lopez, @bob! mail a@b.com #Launch #launch #2026 &#39;"
    assert parse_mentions(body) == {"maria.lopez", "bob"}
    assert parse_hashtags(body) == ["2026", "launch"]
    assert excerpt("a  b\n\nc") == "a b c"
    assert len(excerpt("x" * 1000)) == 280


def test_production_refuses_placeholder_secrets():
    with pytest.raises(ValidationError, match="HEARTH_ADMIN_PASSWORD"):
        PostsSettings(env="prod", jwt_private_key="pem", scim_token="s3cr3t-token-value-long-enough-for-prod-use")
    with pytest.raises(ValidationError, match="JWT_PRIVATE_KEY"):
        PostsSettings(env="prod", admin_password="a-real-password", scim_token="s3cr3t-token-value-long-enough-for-prod-use")
    ok = PostsSettings(env="prod", admin_password="a-real-password", scim_token="s3cr3t-token-value-long-enough-for-prod-use",
                       jwt_private_key="pem")
    assert ok.env == "prod"
    assert PostsSettings(env="dev").admin_password == "change-me"  # fine on a laptop


def _failing_app(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=1000, retry_after=7)

    @app.get("/boom")
    async def boom():
        raise exc

    return app


async def test_unhandled_errors_are_500_problems_without_internals_and_keep_the_connection():
    app = _failing_app(RuntimeError("secret database password in this message"))
    # raise_app_exceptions=True: the app must answer, not re-raise (which drops a keep-alive connection).
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/boom")
    assert response.status_code == 500 and response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text and response.json()["code"] == "internal-error"


@pytest.mark.parametrize("exc", [
    ConnectionRefusedError("connect call failed"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    sa_exc.TimeoutError("QueuePool limit reached"),
    sa_exc.DBAPIError("SELECT 1", {}, asyncpg.exceptions.AdminShutdownError("terminating connection")),
])
async def test_a_database_outage_is_a_503_with_retry_after(exc):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_failing_app(exc)), base_url="http://t") as client:
        response = await client.get("/boom")
    assert response.status_code == 503 and response.headers["retry-after"] == "7"
    assert response.json()["code"] == "service-unavailable"


def test_transient_faults_are_told_apart_from_bugs():
    assert is_transient(sa_exc.OperationalError("x", {}, asyncpg.exceptions.DeadlockDetectedError("deadlock")))
    assert is_transient(asyncpg.exceptions.SerializationError("could not serialize"))
    assert not is_transient(ValueError("bad payload"))
    assert not is_transient(sa_exc.IntegrityError("x", {}, asyncpg.exceptions.UniqueViolationError("dup")))


def test_every_service_declares_bearer_auth_in_openapi():
    import importlib
    for service in ("posts", "notifications", "analytics"):  # messaging has no API routes yet
        document = importlib.import_module(f"services.{service}.main").create_app().openapi()
        assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer", service
    notifications = importlib.import_module("services.notifications.main").create_app().openapi()
    assert notifications["paths"]["/api/v1/notifications"]["get"]["security"] == [{"HTTPBearer": []}]


def test_a_chatty_library_logs_one_line_per_state_not_per_retry():
    from shared.logging import QuietRepeats

    quiet = QuietRepeats(window=60)

    def record(name, msg):
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, (), None)

    passed = [quiet.filter(record("aiokafka.conn", "Unable connect to node with id %s")) for _ in range(500)]
    assert passed.count(True) == 1
    assert quiet.filter(record("aiokafka.cluster", "Failed fetch metadata"))  # another state: one line
    assert all(quiet.filter(record("hearth.outbox", "relay retry")) for _ in range(3))  # ours untouched


async def test_request_context_takes_the_request_id_and_client_and_refuses_declared_oversized_bodies():
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=10)

    @app.api_route("/seen", methods=["GET", "POST"])
    async def seen():
        return {"request_id": request_id_var.get(), "client": client_var.get()}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        given = await client.get("/seen", headers={"X-Request-Id": "req-1", "X-Hearth-Client": "iOS"})
        assert given.json() == {"request_id": "req-1", "client": "ios"} and given.headers["x-request-id"] == "req-1"
        made = await client.get("/seen")
        assert made.json()["client"] is None and len(made.json()["request_id"]) == 32
        assert made.headers["x-request-id"] == made.json()["request_id"]
        too_big = await client.post("/seen", content=b"x" * 11)
        assert too_big.status_code == 413 and too_big.json()["code"] == "payload-too-large"
        assert (await client.post("/seen", content=b"x" * 10)).status_code == 200
