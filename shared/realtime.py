"""Real-time frames over a WebSocket, with per-person sequence numbers and resume from the database.

Used by messaging (`/api/v1/messaging/ws`) and notifications (`/api/v1/notifications/ws`); a service
keeps its frames in its own database and wires three things:

1. Tables, in the service's metadata (one Alembic revision creates them)::

       from shared.realtime import FrameTables
       frames = FrameTables(metadata)          # realtime_frames + realtime_cursors

2. Writes, in the SAME transaction as the state change (so a frame exists exactly when the change does)::

       seqs = await frames.append(session, recipients=[alice, bob], kind="message.created", data={...})
       await add_event(session, MessageCreated(..., recipients=[alice, bob]), subject=...)
       await session.commit()

   Each person has one counter (`realtime_cursors.last_seq`); `append` bumps it for every recipient
   (rows locked in id order, so concurrent writers never deadlock) and stores one frame per recipient.
   `append_cte` is the same as a CTE of the caller's own statement (the change and its frames in one
   round trip; messaging's send does that).

3. Delivery: every replica runs a `shared.fanout.FanoutReader` on the service's topic and calls
   `hub.wake(person_ids)` for the recipients of each event. A woken connection reads its person's frames
   with `seq > last sent` from the database and sends them in order, so live delivery and resume are the
   same code path: a frame is never lost (it is in the database before the event exists), never sent
   twice on one connection and always in sequence order. Ephemeral frames (typing, presence) have no
   `seq`, are never stored and go through `hub.send_ephemeral`.

   The hub is made once the database is up (a lifespan); give it a small pool of its own for frame reads
   (the reads of every woken socket of the replica are coalesced into one query at a time, run on the
   driver's connection outside a transaction; each frame comes out of PostgreSQL as the JSON text that
   goes on the wire, so it is never decoded and re-encoded; an ephemeral frame is encoded once for all
   its sockets)::

       hub = Hub(tables=frames, sessionmaker=make_sessionmaker(make_engine(url, pool_size=2), service=...),
                 settings=RealtimeSettings())
       hub.on_connect.append(...)        # e.g. presence; hub.on_disconnect likewise
       app.state.hub = hub

   The socket route is one line::

       @router.websocket("/api/v1/messaging/ws")
       async def socket(websocket: WebSocket):
           await serve(websocket, hub=websocket.app.state.hub, handler=handle_client_frame)

The protocol (JSON text frames)
-------------------------------
Authentication: the access token, never in the URL (servers log URLs). Either the
``Authorization: Bearer <token>`` header of the upgrade request (non-browser clients), or - browsers
cannot set that header - the first frame ``{"type": "hello", "token": "<token>"}``. The token is never
logged nor echoed. Within ``auth_timeout`` seconds the client sends::

    {"type": "hello", "token": "...optional if the header carried it...", "last_seq": 41}

and the server answers ``{"type": "welcome", "person_id": ..., "seq": <current last seq>,
"heartbeat_seconds": 25}``, then replays every stored frame after ``last_seq`` once, in order. If
``last_seq`` is older than what is kept (at least ``window`` and the newest ``keep_frames`` frames per
person) the server sends ``{"type": "refetch", "seq": N}`` instead: reload state over REST, continue from N.
Without ``last_seq`` the socket starts at the current sequence (no replay).

Server frames: stored ``{"type": kind, "seq": n, "data": {...}}``; ephemeral ``{"type": kind, "data": {...}}``;
``{"type": "pong"}``; ``{"type": "error", "code": ..., "detail": ..., "ref": <client frame id>}``.

Client frames: ``{"type": "ping"}`` (answered by ``pong``) and the service's own types, handed to its
handler; an ``"id"`` field is echoed as ``ref`` in the answer or error. Each connection may send
``rate_per_second`` frames (burst ``rate_burst``); beyond that each frame gets a ``rate-limited`` error (429). An invalid frame (not JSON, not an
object, unknown type, refused by the handler) gets an error frame and the connection stays usable.

Heartbeats: the server pings at the protocol level (uvicorn ``--ws-ping-interval 20 --ws-ping-timeout
20``: a dead peer is closed within 40 s) and answers protocol pings; clients that cannot send protocol
pings (browsers) send ``{"type": "ping"}`` every ``heartbeat_seconds``. A connection that sends nothing at
all for ``idle_timeout`` (60 s) is closed (4408), so a dead one never lingers past 60 s even where the
server's keepalive is off.

Close codes: 1009 a frame over ``max_frame_bytes`` (also set uvicorn ``--ws-max-size``); 1013 the client is
too slow (its bounded send queue filled up: half of it is for stored frames, which wait for room during a
replay, half for replies and ephemeral frames, whose overflow disconnects; or a frame could not be
written for ``send_timeout``); 4401 authentication failed, or the token expired (the socket
closes at the token's ``exp``: reconnect with a fresh token and ``last_seq``); 4403 the person lost access
(deactivated); 4408 no hello in time / idle; 1001 the server is shutting down.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import jwt
import structlog
from sqlalchemy import (BigInteger, Column, DateTime, Index, MetaData, String, Table, bindparam, delete, func, literal,
                        select, true)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from shared import auth
from shared.auth import CurrentUser, MissingScope, required_scope
from shared.errors import AppError, Unauthorized

log = structlog.get_logger("hearth.realtime")

CLOSE_TOO_BIG = 1009
CLOSE_SLOW = 1013
CLOSE_GOING_AWAY = 1001
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TIMEOUT = 4408


class FrameTables:
    """The two tables a service keeps its frames in; create them in the service's own metadata."""

    def __init__(self, metadata: MetaData, *, prefix: str = "realtime"):
        self.cursors = Table(
            f"{prefix}_cursors", metadata,
            Column("person_id", PG_UUID(as_uuid=True), primary_key=True),
            Column("last_seq", BigInteger, nullable=False),
        )
        self.frames = Table(
            f"{prefix}_frames", metadata,
            Column("person_id", PG_UUID(as_uuid=True), primary_key=True),
            Column("seq", BigInteger, primary_key=True),
            Column("kind", String(64), nullable=False),
            Column("data", JSONB, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Index(f"ix_{prefix}_frames_created_at", "created_at"),
        )
        self._append = self._append_statement()
        # The live-delivery read, as asyncpg SQL (no ORM on the hot path): each frame comes out of
        # PostgreSQL already as the JSON text that goes on the wire, so no replica decodes and re-encodes it.
        self._read_wire_sql = (
            "SELECT w.i, f.seq, '{\"type\":' || to_json(f.kind)::text || ',\"seq\":' || f.seq || ',\"data\":' "
            "|| f.data::text || '}' "
            "FROM unnest($1::uuid[], $2::bigint[]) WITH ORDINALITY AS w(person_id, after, i) "
            f"CROSS JOIN LATERAL (SELECT seq, kind, data FROM {self.frames.name} "
            "WHERE person_id = w.person_id AND seq > w.after ORDER BY seq LIMIT $3) f ORDER BY w.i, f.seq")

    async def append(self, session: AsyncSession, *, recipients: Iterable[UUID], kind: str,
                     data: dict[str, Any]) -> dict[UUID, int]:
        """Store one frame per recipient in the caller's transaction; returns each recipient's seq."""
        people = sorted(set(recipients))  # a fixed lock order: concurrent appends cannot deadlock
        if not people:
            return {}
        rows = await session.execute(self._append, {"f_people": people, "f_kind": kind, "f_data": data})
        return {r.person_id: r.seq for r in rows}

    def _append_statement(self):
        """One round trip, built once: bump every recipient's counter, store the frames at what it returned."""
        people = select(func.unnest(bindparam("f_people", type_=ARRAY(PG_UUID(as_uuid=True)))).label("person_id"),
                        literal(1, BigInteger).label("last_seq"))
        bump = insert(self.cursors).from_select(["person_id", "last_seq"], people)
        bump = bump.on_conflict_do_update(index_elements=[self.cursors.c.person_id],
                                          set_={"last_seq": self.cursors.c.last_seq + 1}) \
            .returning(self.cursors.c.person_id, self.cursors.c.last_seq).cte("bumped")
        store = insert(self.frames).from_select(
            ["person_id", "seq", "kind", "data"],
            select(bump.c.person_id, bump.c.last_seq, bindparam("f_kind", type_=String),
                   bindparam("f_data", type_=JSONB)))  # (names unlike any column's, see messages' _SEND)
        return store.returning(self.frames.c.person_id, self.frames.c.seq)

    def append_cte(self, frames, *, kind: str, name: str = "frames"):
        """`append` as a CTE of the caller's own statement, so a change and its frames are one round trip.

        `frames`: a select of the frames to store, columns labelled ``person_id`` and ``data`` (JSONB; it may
        use the statement's other CTEs - a sequence number the statement assigns, say); select nothing and
        nothing is stored. Counters are locked in person_id order, as `append` does. Add the returned CTE to
        the statement (`.add_cte(...)`): PostgreSQL runs it even when nothing reads it."""
        wanted = frames.cte(f"{name}_wanted")
        bump = insert(self.cursors).from_select(
            ["person_id", "last_seq"], select(wanted.c.person_id, literal(1, BigInteger)).order_by(wanted.c.person_id))
        bump = bump.on_conflict_do_update(index_elements=[self.cursors.c.person_id],
                                          set_={"last_seq": self.cursors.c.last_seq + 1}) \
            .returning(self.cursors.c.person_id, self.cursors.c.last_seq).cte(f"{name}_bump")
        return insert(self.frames).from_select(
            ["person_id", "seq", "kind", "data"],
            select(bump.c.person_id, bump.c.last_seq, literal(kind, String), wanted.c.data)
            .join_from(bump, wanted, wanted.c.person_id == bump.c.person_id)) \
            .returning(self.frames.c.seq).cte(f"{name}_store")

    async def last_seq(self, session: AsyncSession, person_id: UUID) -> int:
        return await session.scalar(select(self.cursors.c.last_seq).where(self.cursors.c.person_id == person_id)) or 0

    async def read(self, session: AsyncSession, *, person_id: UUID, after: int, limit: int = 200) -> list[dict]:
        """Stored frames of a person after `after`, oldest first, as they go on the wire."""
        rows = await session.execute(
            select(self.frames.c.seq, self.frames.c.kind, self.frames.c.data)
            .where(self.frames.c.person_id == person_id, self.frames.c.seq > after)
            .order_by(self.frames.c.seq).limit(limit))
        return [{"type": r.kind, "seq": r.seq, "data": r.data} for r in rows]

    async def read_many(self, session: AsyncSession, requests: list[tuple[UUID, int]],
                        limit: int = 200) -> list[list[dict]]:
        """`read` for many (person, after) pairs in one query; the answers in the order asked."""
        f = self.frames
        wanted = func.unnest(literal([p for p, _ in requests], ARRAY(PG_UUID(as_uuid=True))),
                             literal([a for _, a in requests], ARRAY(BigInteger))) \
            .table_valued("person_id", "after", with_ordinality="i").render_derived("w")
        rows = (select(f.c.seq, f.c.kind, f.c.data).where(f.c.person_id == wanted.c.person_id,
                                                          f.c.seq > wanted.c.after)
                .order_by(f.c.seq).limit(limit).lateral("f"))
        result = await session.execute(select(wanted.c.i, rows.c.seq, rows.c.kind, rows.c.data)
                                       .select_from(wanted).join(rows, true()).order_by(wanted.c.i, rows.c.seq))
        out: list[list[dict]] = [[] for _ in requests]
        for i, seq, kind, data in result:
            out[i - 1].append({"type": kind, "seq": seq, "data": data})
        return out

    async def read_wire(self, connection, requests: list[tuple[UUID, int]], limit: int = 200) -> list[list[tuple[int, str]]]:
        """`read_many` on an asyncpg connection, each frame as (seq, its JSON text): what the hub sends."""
        rows = await connection.fetch(self._read_wire_sql, [p for p, _ in requests], [a for _, a in requests], limit)
        out: list[list[tuple[int, str]]] = [[] for _ in requests]
        for i, seq, text in rows:
            out[i - 1].append((seq, text))
        return out

    async def can_resume(self, session: AsyncSession, *, person_id: UUID, after: int, current: int) -> bool:
        """True when every frame after `after` is still stored (the client can replay instead of refetching)."""
        if after > current or after < 0:
            return False
        if after == current:
            return True
        return await session.scalar(select(self.frames.c.seq).where(
            self.frames.c.person_id == person_id, self.frames.c.seq == after + 1)) is not None

    async def purge(self, session: AsyncSession, *, window: timedelta, keep_frames: int) -> int:
        """Delete frames both older than `window` and not among a person's newest `keep_frames`."""
        stmt = delete(self.frames).where(
            self.frames.c.created_at < func.now() - window,
            self.frames.c.seq <= select(self.cursors.c.last_seq - keep_frames)
            .where(self.cursors.c.person_id == self.frames.c.person_id).scalar_subquery())
        result = await session.execute(stmt)
        return result.rowcount or 0


@dataclass(frozen=True)
class RealtimeSettings:
    max_frame_bytes: int = 65_536
    send_queue: int = 256  # frames waiting for a slow client before it is disconnected
    send_timeout: float = 10.0  # one frame that cannot be written for this long: the client is too slow
    auth_timeout: float = 10.0
    idle_timeout: float = 60.0
    heartbeat_seconds: int = 25
    rate_per_second: float = 20.0  # client frames per connection (a token bucket); beyond: `rate-limited` errors
    rate_burst: int = 40
    window: timedelta = timedelta(minutes=15)
    keep_frames: int = 1000
    batch: int = 200


class FrameError(AppError):
    """A client frame the server refuses; answered with an error frame, the connection stays open."""

    code, title = "invalid-frame", "Invalid frame"


class TooManyFrames(AppError):
    status, code, title = 429, "rate-limited", "Too many frames"


class Connection:
    """One open socket of one person: a bounded send queue drained by one writer task."""

    def __init__(self, websocket: WebSocket, user: CurrentUser, *, settings: RealtimeSettings, sent_seq: int):
        self.websocket, self.user, self.settings = websocket, user, settings
        self.sent_seq = sent_seq  # highest stored seq queued on this connection
        # dict: a reply (encoded by the writer); str: an encoded ephemeral frame; (seq, str): a stored frame
        self.queue: asyncio.Queue[dict | str | tuple[int, str]] = asyncio.Queue(maxsize=settings.send_queue)
        # Stored frames (a replay) may take half the queue and wait for room; the other half is for
        # replies and ephemeral frames, whose overflow means the client is too slow.
        self.stored_slots = asyncio.Semaphore(max(1, settings.send_queue // 2))
        self.woken = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.state: dict[str, Any] = {}  # service-specific (presence status, subscriptions)
        self.expires_at: float | None = None  # epoch seconds of the token's expiry
        self._tokens, self._refilled = float(settings.rate_burst), time.monotonic()

    def allow(self) -> bool:
        """Token bucket over client frames: a flooding client gets errors, not the server's time."""
        now = time.monotonic()
        self._tokens = min(float(self.settings.rate_burst),
                           self._tokens + (now - self._refilled) * self.settings.rate_per_second)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    @property
    def person_id(self) -> UUID:
        return self.user.id

    def push(self, frame: dict | str | tuple[int, str]) -> bool:
        """Queue a frame; a full queue means the client cannot keep up, so it is disconnected."""
        if self.closed.is_set():
            return False
        try:
            self.queue.put_nowait(frame)
            return True
        except asyncio.QueueFull:
            log.info("slow socket disconnected", person_id=str(self.person_id))
            self.close(CLOSE_SLOW, "send queue full")
            return False

    def close(self, code: int, reason: str = "") -> None:
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason
            self.closed.set()


class Hub:
    """The sockets this replica holds, by person; what the fan-out reader delivers to."""

    def __init__(self, *, tables: FrameTables, sessionmaker: async_sessionmaker | None = None,
                 settings: RealtimeSettings = RealtimeSettings(), authenticate=None):
        # `authenticate`: async (websocket, token, session) -> CurrentUser; defaults to `authenticate` below.
        self.tables, self.sessionmaker, self.settings = tables, sessionmaker, settings
        self.authenticate = authenticate or globals()["authenticate"]
        self.connections: dict[UUID, set[Connection]] = {}
        self.on_connect: list[Callable[[Connection], Awaitable[None]]] = []
        self.on_disconnect: list[Callable[[Connection], Awaitable[None]]] = []
        self._requests: list[tuple[UUID, int, asyncio.Future]] = []
        self._reader_task: asyncio.Task | None = None

    async def fetch(self, person_id: UUID, after: int) -> list[tuple[int, str]]:
        """Stored frames after `after` as (seq, JSON text): reads of all sockets waiting at once go to the
        database as one query."""
        future = asyncio.get_running_loop().create_future()
        self._requests.append((person_id, after, future))
        if self._reader_task is None or self._reader_task.done():
            self._reader_task = asyncio.create_task(self._read_batches())
        return await future

    def _engine(self):
        """The engine behind the hub's sessionmaker (frame reads need a connection, not a session)."""
        return self.sessionmaker.kw["bind"]

    async def _read_batches(self) -> None:
        # One query in flight at a time: under load the batches grow instead of the queries.
        while self._requests:
            await asyncio.sleep(0)  # let the sockets woken by the same event ask too
            requests, self._requests = self._requests[:1000], self._requests[1000:]
            try:
                # A pooled connection (no ORM session), used straight on the driver outside any
                # transaction (one statement, one round trip); a failure drops the connection, which may
                # be the broken part.
                async with self._engine().connect() as connection:
                    try:
                        raw = await connection.get_raw_connection()
                        answers = await self.tables.read_wire(raw.driver_connection, [(p, a) for p, a, _ in requests],
                                                              limit=self.settings.batch)
                    except BaseException:
                        await connection.invalidate()
                        raise
            except Exception as exc:
                for _, _, future in requests:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), frames in zip(requests, answers):
                if not future.done():
                    future.set_result(frames)

    def local(self, person_id: UUID) -> set[Connection]:
        return self.connections.get(person_id, set())

    def wake(self, person_ids: Iterable[UUID]) -> None:
        """New stored frames exist for these people: their connections here read them from the database."""
        for person_id in person_ids:
            for conn in self.connections.get(person_id, ()):
                conn.woken.set()

    def send_ephemeral(self, person_ids: Iterable[UUID], kind: str, data: dict) -> None:
        """A frame that is never stored (typing, presence): sent to whoever is connected here now."""
        text = None  # encoded once, the same text for every socket
        for person_id in person_ids:
            for conn in list(self.connections.get(person_id, ())):
                if text is None:
                    text = json.dumps({"type": kind, "data": data}, default=str)
                conn.push(text)

    def close_person(self, person_id: UUID, code: int, reason: str = "") -> None:
        for conn in list(self.connections.get(person_id, ())):
            conn.close(code, reason)

    def count(self) -> int:
        return sum(len(c) for c in self.connections.values())

    def _add(self, conn: Connection) -> None:
        self.connections.setdefault(conn.person_id, set()).add(conn)

    def _remove(self, conn: Connection) -> None:
        conns = self.connections.get(conn.person_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.connections[conn.person_id]


ClientHandler = Callable[[Connection, dict], Awaitable[dict | None]]


async def authenticate(websocket: WebSocket, token: str, session: AsyncSession) -> CurrentUser:
    """The default check: the app's verifier, API-token revocation and scope, an active person."""
    from shared.directory import directory_people  # shared.directory imports shared.auth like we do

    user = await websocket.app.state.verifier.verify(token)
    # The same guards as REST (shared.auth.current_user): revoked API tokens, ended sessions, deactivation.
    guard = getattr(websocket.app.state, "api_token_guard" if user.is_api_token else "session_guard", None)
    if guard is None and user.is_api_token:
        guard = getattr(auth, "check_api_token", None)
        if guard is None:
            raise Unauthorized("This service cannot check API tokens.")
    if guard is not None:
        user = await guard(session, user)  # the guards refuse deactivated people too
    if user.scopes is not None:
        scope = required_scope("GET", websocket.url.path)
        if scope is None or scope not in user.scopes:
            raise MissingScope(f"This API token lacks the scope {scope}.", required_scope=scope)
    if guard is None:
        active = await session.scalar(select(directory_people.c.active).where(directory_people.c.id == user.id))
        if active is False:
            raise Unauthorized("This person is deactivated.")
    return user


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _receive_text(websocket: WebSocket, conn_settings: RealtimeSettings, timeout: float) -> str | None:
    """The next text frame; None on disconnect. Bigger than the limit -> close 1009 (raises)."""
    async with asyncio.timeout(timeout):  # (no task per frame, unlike wait_for)
        message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    raw = message.get("text")
    if raw is None:
        raw_bytes = message.get("bytes") or b""
        if len(raw_bytes) > conn_settings.max_frame_bytes:
            raise _TooBig()
        try:
            return raw_bytes.decode()
        except UnicodeDecodeError:
            return "\x00"  # not JSON: answered with an error frame
    if len(raw) > conn_settings.max_frame_bytes or len(raw.encode()) > conn_settings.max_frame_bytes:
        raise _TooBig()
    return raw


class _TooBig(Exception):
    pass


def _parse(raw: str) -> dict:
    try:
        frame = json.loads(raw)
    except ValueError:
        raise FrameError("The frame is not valid JSON.")
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("A frame is a JSON object with a string `type`.")
    return frame


def _error(exc: AppError, ref: Any = None) -> dict:
    frame = {"type": "error", "code": exc.code, "status": exc.status, "detail": exc.detail} | {
        k: v for k, v in exc.data.items() if k not in ("type", "code", "status", "detail")}
    if ref is not None:
        frame["ref"] = ref
    return frame


async def serve(websocket: WebSocket, *, hub: Hub, handler: ClientHandler) -> None:
    """Run one socket: hello/auth, replay, then live frames until either side closes."""
    settings = hub.settings
    await websocket.accept()
    try:
        conn = await _hello(websocket, hub)
    except _TooBig:
        await _close(websocket, CLOSE_TOO_BIG, "frame too large")
        return
    except (TimeoutError, WebSocketDisconnect):
        await _close(websocket, CLOSE_TIMEOUT, "no hello in time")
        return
    except Exception as exc:  # the database is unreachable or overloaded: the client retries later
        log.warning("socket hello failed", error=repr(exc))
        await _close(websocket, 1011, "try again later")
        return
    if conn is None:
        return
    hub._add(conn)
    tasks = [asyncio.create_task(_writer(conn)), asyncio.create_task(_catch_up(conn, hub)),
             asyncio.create_task(_reader(conn, handler)), asyncio.create_task(_expire(conn))]
    try:
        for callback in hub.on_connect:
            await callback(conn)
        conn.woken.set()  # replay what was missed (and anything stored since the welcome)
        await conn.closed.wait()
    finally:
        hub._remove(conn)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for callback in hub.on_disconnect:
            try:
                await callback(conn)
            except Exception as exc:
                log.warning("disconnect callback failed", error=repr(exc))
        await _close(websocket, conn.close_code or 1000, getattr(conn, "close_reason", ""))


async def _hello(websocket: WebSocket, hub: Hub) -> Connection | None:
    settings = hub.settings
    deadline = asyncio.get_running_loop().time() + settings.auth_timeout  # invalid frames do not extend it
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError
        raw = await _receive_text(websocket, settings, remaining)
        if raw is None:
            return None
        try:
            frame = _parse(raw)
            if frame["type"] != "hello":
                raise FrameError("The first frame must be a hello.")
            last_seq = frame.get("last_seq")
            if last_seq is not None and (not isinstance(last_seq, int) or isinstance(last_seq, bool)):
                raise FrameError("`last_seq` must be an integer.")
            break
        except FrameError as exc:
            await websocket.send_text(json.dumps(_error(exc)))
    token = frame.get("token") if isinstance(frame.get("token"), str) else _bearer(websocket)
    # The app's own sessions (the hub's may be a small pool kept for frame reads).
    sessionmaker = getattr(websocket.app.state, "sessionmaker", None) or hub.sessionmaker
    async with sessionmaker() as session:
        try:
            if not token:
                raise FrameError("An access token is required (Authorization header or hello.token).")
            user = await hub.authenticate(websocket, token, session)
        except AppError as exc:
            await websocket.send_text(json.dumps(_error(exc)))
            forbidden = exc.status == 403
            await _close(websocket, CLOSE_FORBIDDEN if forbidden else CLOSE_UNAUTHORIZED,
                         "forbidden" if forbidden else "unauthorized")
            return None
        current = await hub.tables.last_seq(session, user.id)
        resumable = last_seq is None or await hub.tables.can_resume(session, person_id=user.id, after=last_seq,
                                                                      current=current)
    start = current if last_seq is None or not resumable else last_seq
    conn = Connection(websocket, user, settings=settings, sent_seq=start)
    conn.expires_at = _expiry(token)
    await websocket.send_text(json.dumps({"type": "welcome", "person_id": str(user.id), "seq": current,
                                          "heartbeat_seconds": settings.heartbeat_seconds}))
    if not resumable:
        await websocket.send_text(json.dumps({"type": "refetch", "seq": current}))
    return conn


def _expiry(token: str) -> float | None:
    """The token's `exp` (already verified by `authenticate`), so the socket ends when the token does."""
    try:
        return float(jwt.decode(token, options={"verify_signature": False})["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None


async def _expire(conn: Connection) -> None:
    """Close at the token's expiry (4401): the client reconnects with a fresh token and resumes."""
    if conn.expires_at is not None:
        await asyncio.sleep(max(0.0, conn.expires_at - time.time()))
        conn.close(CLOSE_UNAUTHORIZED, "token expired")


async def _writer(conn: Connection) -> None:
    send_timeout = conn.settings.send_timeout
    send_text = conn.websocket.send_text
    try:
        while True:
            frame = await conn.queue.get()
            stored = type(frame) is tuple
            text = frame[1] if stored else frame if type(frame) is str else json.dumps(frame, default=str)
            try:
                async with asyncio.timeout(send_timeout):  # (no task per frame, unlike wait_for)
                    await send_text(text)
            except TimeoutError:
                conn.close(CLOSE_SLOW, "send timeout")
                return
            if stored:
                conn.stored_slots.release()
    except Exception as exc:  # the peer went away mid-send
        if not isinstance(exc, asyncio.CancelledError):
            conn.close(1000)
        raise


async def _catch_up(conn: Connection, hub: Hub) -> None:
    """Queue stored frames after the last one sent, whenever woken (live delivery and replay alike)."""
    backoff = 0.2
    while not conn.closed.is_set():
        await conn.woken.wait()
        conn.woken.clear()
        try:
            while True:
                frames = await hub.fetch(conn.person_id, conn.sent_seq)
                for frame in frames:
                    # Stored frames wait for room (they are safe in the database, a long replay is not
                    # a slow client); a client that takes none for send_timeout is one.
                    if conn.stored_slots.locked():
                        try:
                            async with asyncio.timeout(conn.settings.send_timeout):
                                await conn.stored_slots.acquire()
                        except TimeoutError:
                            conn.close(CLOSE_SLOW, "send queue full")
                            return
                    else:
                        await conn.stored_slots.acquire()  # free: returns at once
                    if not conn.push(frame):
                        return
                    conn.sent_seq = frame[0]
                if len(frames) < hub.settings.batch:
                    break
            backoff = 0.2
        except Exception as exc:  # database trouble: keep the connection, retry the read
            log.warning("frame read failed; retrying", error=repr(exc))
            conn.woken.set()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


async def _reader(conn: Connection, handler: ClientHandler) -> None:
    settings = conn.settings
    try:
        while True:
            try:
                raw = await _receive_text(conn.websocket, settings, settings.idle_timeout)
            except TimeoutError:
                conn.close(CLOSE_TIMEOUT, "idle")
                return
            except _TooBig:
                conn.close(CLOSE_TOO_BIG, "frame too large")
                return
            if raw is None:
                conn.close(1000)
                return
            frame: dict = {}
            try:
                frame = _parse(raw)
                if not conn.allow():
                    raise TooManyFrames(f"At most {settings.rate_per_second:g} frames per second.",
                                        retry_after=1)
                if frame["type"] == "ping":
                    reply = {"type": "pong"}
                else:
                    reply = await handler(conn, frame)
            except AppError as exc:
                reply = _error(exc)
            except Exception as exc:
                log.exception("socket frame handler failed", error=repr(exc))
                reply = {"type": "error", "code": "internal-error", "status": 500, "detail": "Something went wrong."}
            if reply is not None:
                if "id" in frame and reply.get("type") != "pong":
                    reply = reply | {"ref": frame["id"]}
                conn.push(reply)
            # Let the writer run between two client frames: frames already received are read without a
            # pause, and a burst of replies would otherwise fill the queue before any of them is written.
            await asyncio.sleep(0)
    except (WebSocketDisconnect, RuntimeError):
        conn.close(1000)


async def _close(websocket: WebSocket, code: int, reason: str = "") -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED and \
            websocket.client_state != WebSocketState.DISCONNECTED:
        try:
            # A client too slow to take the close frame is not waited for: returning drops the transport.
            await asyncio.wait_for(websocket.close(code=code, reason=reason), timeout=5)
        except Exception:
            pass


async def purge_loop(tables: FrameTables, sessionmaker: async_sessionmaker, settings: RealtimeSettings,
                     stop: asyncio.Event, every: float = 60.0) -> None:
    """Delete frames beyond the resume window now and then (every replica may run it; it is idempotent)."""
    while not stop.is_set():
        try:
            async with sessionmaker() as session, session.begin():
                await tables.purge(session, window=settings.window, keep_frames=settings.keep_frames)
        except Exception as exc:
            log.warning("frame purge failed", error=repr(exc))
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            pass


__all__ = ["CLOSE_FORBIDDEN", "CLOSE_SLOW", "CLOSE_TOO_BIG", "CLOSE_UNAUTHORIZED", "Connection", "FrameError",
           "FrameTables", "Hub", "RealtimeSettings", "purge_loop", "serve"]
