"""`Idempotency-Key` for POST routes that create something: a retry gets the first response, not a second effect.

Use it by building the router with the route class (every POST of the router then honours the header,
and the OpenAPI documents it):

    from shared.idempotency import IdempotentRoute

    router = APIRouter(prefix="/api/v1/posts", tags=["posts"], route_class=IdempotentRoute)

    @router.post("", response_model=PostPublic, status_code=201)
    async def create_post(data: PostCreate, session: SessionDep, user: CurrentUserDep): ...

Behaviour (per person and key, kept `TTL` = 24 h):
- first request: the key is claimed (committed at once, so a concurrent retry sees it), the route runs,
  and a 2xx response is stored; any other outcome releases the key so the client can retry;
- a retry with the same method, path and body: the stored response, with `Idempotent-Replayed: true`;
- the same key with another body: 422 `idempotency-key-reused`;
- a retry while the first is still running waits for it (up to `WAIT`), else 409 with `Retry-After`.
  Concurrent retries therefore make one effect. A claim whose request died is taken over after `LOCK`.
Requests without the header, or without a valid bearer token (the route answers 401), are untouched.
"""

import asyncio
import hashlib
import json
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import get_session, utcnow
from shared.errors import AppError, Conflict, InvalidInput
from shared.outbox import infra_metadata

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
LOCK = timedelta(seconds=60)  # a claim older than this belongs to a request that died
WAIT = 5.0  # seconds a retry waits for the first request to finish
KEY_MAX_LENGTH = 255

idempotency_keys_table = Table(
    "idempotency_keys", infra_metadata,
    Column("principal", String(64), nullable=False),  # the person (their id) the key belongs to
    Column("key", String(KEY_MAX_LENGTH), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of method, path and body
    Column("status_code", Integer, nullable=True),  # NULL while the first request runs
    Column("content_type", String(255), nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("locked_until", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("principal", "key"),
)


class IdempotencyKeyReused(InvalidInput):
    code, title = "idempotency-key-reused", "Idempotency key reused with another request"


class IdempotencyKeyInvalid(InvalidInput):
    code, title = "idempotency-key-invalid", "Invalid idempotency key"


class IdempotencyKeyInProgress(Conflict):
    code, title = "idempotency-key-in-progress", "A request with this idempotency key is in progress"


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The request's identity: JSON bodies compare by content, so key order and spacing do not matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), canonical])).hexdigest()


def _valid_key(key: str) -> str:
    if not 1 <= len(key) <= KEY_MAX_LENGTH or not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise IdempotencyKeyInvalid(f"{HEADER} must be 1 to {KEY_MAX_LENGTH} visible ASCII characters.",
                                    field=HEADER)
    return key


@asynccontextmanager
async def app_session(request: Request):
    """A session from the app's own session dependency (tests override it with savepoint sessions)."""
    provider = request.app.dependency_overrides.get(get_session, get_session)
    generator = provider() if provider is not get_session else get_session(request)
    session = await anext(generator)
    try:
        yield session
    finally:
        await generator.aclose()


async def claim(session: AsyncSession, *, principal: str, key: str, print_: str) -> Response | None:
    """Claim the key for this request (None), or the stored response of an earlier identical one.

    Raises when the key is held by another body, or by a request still running after WAIT seconds."""
    t = idempotency_keys_table
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        now = utcnow()
        await session.execute(delete(t).where(t.c.principal == principal, t.c.expires_at < now))
        taken = await session.scalar(insert(t).values(
            principal=principal, key=key, fingerprint=print_, locked_until=now + LOCK, expires_at=now + TTL)
            .on_conflict_do_nothing().returning(t.c.key))
        if taken is None:
            row = (await session.execute(select(t).where(t.c.principal == principal, t.c.key == key))).first()
            if row is not None and row.fingerprint != print_:
                await session.rollback()
                raise IdempotencyKeyReused(f"This {HEADER} was used for a different request.")
            if row is not None and row.status_code is not None:
                await session.rollback()
                return Response(row.body, status_code=row.status_code, media_type=row.content_type,
                                headers={"Idempotent-Replayed": "true"})
            if row is not None and row.locked_until < now:  # its request died: take the claim over
                taken = await session.scalar(update(t).where(t.c.principal == principal, t.c.key == key,
                                                             t.c.locked_until == row.locked_until)
                                             .values(locked_until=now + LOCK).returning(t.c.key))
        await session.commit()
        if taken is not None:
            return None
        if asyncio.get_running_loop().time() >= deadline:
            raise IdempotencyKeyInProgress("The first request with this key is still running; retry shortly.",
                                           headers={"Retry-After": "1"})
        await asyncio.sleep(0.05)


async def finish(session: AsyncSession, *, principal: str, key: str, response: Response) -> None:
    """Keep a 2xx response for replay; release the key after anything else (the client may retry)."""
    t = idempotency_keys_table
    where = (t.c.principal == principal, t.c.key == key)
    if 200 <= response.status_code < 300 and hasattr(response, "body"):
        await session.execute(update(t).where(*where).values(
            status_code=response.status_code, body=bytes(response.body),
            content_type=response.headers.get("content-type")))
    else:
        await session.execute(delete(t).where(*where))
    await session.commit()


async def _principal(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        user = await request.app.state.verifier.verify(token.strip())
    except AppError:
        return None
    return str(user.id)


_OPENAPI_HEADER = {"parameters": [{
    "name": HEADER, "in": "header", "required": False,
    "description": "Retry-safe creation: a retry with the same key and body gets the first response "
                   "(kept 24 h, per person); the same key with another body is 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX_LENGTH}}]}


class IdempotentRoute(APIRoute):
    """An APIRoute whose POST honours `Idempotency-Key` (see the module docstring).

    It wraps the route's ASGI app, outside the request's dependencies, so the response is stored
    after the route's own session has closed (its transaction is over, whatever it did)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        methods = {m.upper() for m in kwargs.get("methods") or ()}
        if "POST" in methods:
            extra = kwargs.get("openapi_extra") or {}
            kwargs["openapi_extra"] = extra | {"parameters": extra.get("parameters", []) + _OPENAPI_HEADER["parameters"]}
        super().__init__(path, endpoint, **kwargs)
        self._idempotent_handle = _idempotent(super().handle) if "POST" in methods else super().handle

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._idempotent_handle(scope, receive, send)


def _idempotent(app: ASGIApp) -> ASGIApp:
    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        raw_key = request.headers.get(HEADER)
        principal = await _principal(request) if raw_key is not None and scope["method"] == "POST" else None
        if principal is None:
            return await app(scope, receive, send)
        key = _valid_key(raw_key)
        body = await request.body()
        print_ = fingerprint("POST", f"{request.url.path}?{request.url.query}", body)
        async with app_session(request) as session:
            stored = await claim(session, principal=principal, key=key, print_=print_)
        if stored is not None:
            return await stored(scope, receive, send)

        replayed = False

        async def receive_body() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        response = Response(status_code=500)
        try:
            await app(scope, receive_body, capture)
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
            response = Response(b"".join(chunks), status_code=start.get("status", 500),
                                media_type=headers.get("content-type"))
        finally:
            async with app_session(request) as session:
                await finish(session, principal=principal, key=key, response=response)

    return asgi
