"""`Idempotency-Key` for POST routes that create something: a retry gets the first response, not a second effect.

Use it by building the router with the route class (every POST of the router then honours the header,
and the OpenAPI documents it):

    from shared.idempotency import IdempotentRoute

    router = APIRouter(prefix="/api/v1/posts", tags=["posts"], route_class=IdempotentRoute)

    @router.post("", response_model=PostPublic, status_code=201)
    async def create_post(data: PostCreate, session: SessionDep, user: CurrentUserDep): ...

Behaviour (per person and key, kept `TTL` = 24 h):
- first request: the key is claimed (committed at once, so a concurrent retry sees it), the route runs,
  and a 2xx response is kept in the route's own transaction (it commits with the effect or not at all);
  any other outcome releases the key so the client can retry;
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
    generator = provider(request)
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


async def keep(session: AsyncSession, *, principal: str, key: str, response: Response) -> None:
    """Store a 2xx response for replay, in `session` (the caller commits it)."""
    t = idempotency_keys_table
    await session.execute(update(t).where(t.c.principal == principal, t.c.key == key).values(
        status_code=response.status_code, body=bytes(response.body), content_type=response.headers.get("content-type")))


async def release(request: Request, *, principal: str, key: str) -> None:
    """Free the key after anything but a 2xx (the client may retry), in a session of its own."""
    t = idempotency_keys_table
    async with app_session(request) as session:
        await session.execute(delete(t).where(t.c.principal == principal, t.c.key == key))
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

    It wraps the route's handler inside the request's unit of work: a 2xx response is stored in the
    route's own transaction, so the effect and its replayable answer commit together or not at all."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        methods = {m.upper() for m in kwargs.get("methods") or ()}
        self._idempotent = "POST" in methods  # read by get_route_handler, which APIRoute.__init__ calls
        if self._idempotent:
            extra = kwargs.get("openapi_extra") or {}
            kwargs["openapi_extra"] = extra | {"parameters": extra.get("parameters", []) + _OPENAPI_HEADER["parameters"]}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()
        return _idempotent(handler) if self._idempotent else handler


def _idempotent(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def idempotent_handler(request: Request) -> Response:
        raw_key = request.headers.get(HEADER)
        principal = await _principal(request) if raw_key is not None and request.method == "POST" else None
        if principal is None:
            return await handler(request)
        key = _valid_key(raw_key)
        body = await request.body()  # kept on the request: the route reads the same bytes
        print_ = fingerprint("POST", f"{request.url.path}?{request.url.query}", body)
        async with app_session(request) as session:
            stored = await claim(session, principal=principal, key=key, print_=print_)
        if stored is not None:
            return stored
        request.state.unit_of_work = None  # set again by the route's session dependency, if it has one
        try:
            response = await handler(request)
        except BaseException:
            await release(request, principal=principal, key=key)
            raise
        if not (200 <= response.status_code < 300 and hasattr(response, "body")):
            await release(request, principal=principal, key=key)
        elif (session := request.state.unit_of_work) is not None:
            await keep(session, principal=principal, key=key, response=response)  # commits with the effect
        else:  # a route without a database session: nothing to commit with
            async with app_session(request) as own:
                await keep(own, principal=principal, key=key, response=response)
                await own.commit()
        return response

    return idempotent_handler
