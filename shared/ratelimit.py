"""Rate limits kept in PostgreSQL (fixed windows), per person or API token and per client address.

Every request of every service passes `RateLimitMiddleware` (installed by shared.guards): a caller
with a verified bearer token is counted per person (per token for API tokens), anyone else per
client address (shared.context.client_address, so HEARTH_TRUSTED_PROXIES decides). Some routes
also have a stricter rule of their own (sign-in, SCIM, API token creation, follows, posting); each
rule is a setting. Over a limit: 429 problem+json with `Retry-After`; every counted response
carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` of its tightest rule.

Counting is one `INSERT … ON CONFLICT DO UPDATE … RETURNING` for all of a request's rules, outside any
transaction on a pooled connection (no session, no transaction round trips, asyncpg's prepared statement
without SQLAlchemy's execution layer), so every replica sees the same counts. Code that needs a counter of its own (failed SCIM sign-ins)
uses `hit` / `peek` directly.

A caller whose service guards its kind of token with a `shared.auth.StatementGuard` (posts' session guard)
has the guard's facts read in that same statement (`count_and_guard`): the verdict waits in the request's
state for `current_user`, so the request spends one round trip on both, and the guard still runs on every
request.
"""

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, datetime, timedelta

from fastapi import Request
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.util import greenlet_spawn
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import GUARDED, CurrentUser, StatementGuard, guard_for
from shared.context import request_client_address
from shared.errors import AppError, TooManyRequests, problem
from shared.db import compiled_sql, driver_args, get_session
from shared.idempotency import app_session
from shared.outbox import infra_metadata

BUCKET_MAX_LENGTH = 160
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
PURGE_AFTER = timedelta(days=1)  # longer than any rule's period

rate_limits_table = Table(
    "rate_limits", infra_metadata,
    Column("bucket", String(BUCKET_MAX_LENGTH), nullable=False),  # "<rule>:<person|token|address>"
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("hits", Integer, nullable=False),
    PrimaryKeyConstraint("bucket", "window_start"),
)


class RateLimited(TooManyRequests):
    code, title = "rate-limited", "Too many requests"


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    period: int  # seconds


@dataclass(frozen=True)
class Decision:
    rule: Rule
    hits: int
    reset_after: int  # seconds until the window ends

    @property
    def allowed(self) -> bool:
        return self.hits <= self.rule.limit

    @property
    def remaining(self) -> int:
        return max(self.rule.limit - self.hits, 0)


def _window(rule: Rule, now: datetime) -> tuple[datetime, int]:
    epoch = int(now.timestamp())
    start = epoch - epoch % rule.period
    return datetime.fromtimestamp(start, UTC), start + rule.period - epoch


def _bucket(rule: Rule, subject: str) -> str:
    return f"{rule.name}:{subject}"[:BUCKET_MAX_LENGTH]


async def hit(session: AsyncSession, *, rule: Rule, subject: str, now: datetime | None = None) -> Decision:
    """Count one request of `subject` under `rule` and commit; the decision says whether it is allowed."""
    now = now or datetime.now(UTC)
    start, reset_after = _window(rule, now)
    t = rate_limits_table
    stmt = insert(t).values(bucket=_bucket(rule, subject), window_start=start, hits=1)
    hits = await session.scalar(stmt.on_conflict_do_update(index_elements=[t.c.bucket, t.c.window_start],
                                                           set_={"hits": t.c.hits + 1}).returning(t.c.hits))
    if random.random() < 0.001:  # purge now and then instead of a job; old windows are never read
        await session.execute(delete(t).where(t.c.window_start < now - PURGE_AFTER))
    await session.commit()
    return Decision(rule, hits, reset_after)


async def peek(session: AsyncSession, *, rule: Rule, subject: str, now: datetime | None = None) -> Decision:
    """The count so far in the current window, without counting."""
    now = now or datetime.now(UTC)
    start, reset_after = _window(rule, now)
    t = rate_limits_table
    hits = await session.scalar(select(t.c.hits).where(t.c.bucket == _bucket(rule, subject),
                                                       t.c.window_start == start)) or 0
    return Decision(rule, hits, reset_after)


# Every rule of a request counted in one statement (a bucket per rule, so no row is hit twice).
_COUNT_SQL = (
    "INSERT INTO rate_limits (bucket, window_start, hits) "
    "SELECT bucket, window_start, 1 FROM unnest(CAST({buckets} AS varchar[]), CAST({starts} AS timestamptz[])) "
    "AS counted(bucket, window_start) "
    "ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING bucket, hits")
_COUNT_DRIVER = _COUNT_SQL.format(buckets="$1", starts="$2")  # asyncpg's own placeholders
# The count and a StatementGuard's facts about the caller in one round trip: every counted row carries them
# (NULLs when the facts have no row). The facts' own parameters come first ($1..$n), the count's after.
_WITH_FACTS_SQL = ("WITH counted AS ({count}) SELECT counted.bucket, counted.hits, facts.* "
                   "FROM counted LEFT JOIN ({facts}) AS facts ON true")


@lru_cache(maxsize=16)
def _with_facts(facts: Executable, dialect) -> tuple[str, tuple[str, ...], dict]:
    sql, names, constants = compiled_sql(facts, dialect)
    n = len(set(names))
    count_sql = _COUNT_SQL.format(buckets=f"${n + 1}", starts=f"${n + 2}")
    return _WITH_FACTS_SQL.format(count=count_sql, facts=sql), names, constants


async def count(request: Request, counted: list[tuple[Rule, str]]) -> list[Decision]:
    """Count one request under each (rule, subject); the decisions say whether it is allowed."""
    return (await count_and_guard(request, counted))[0]


async def count_and_guard(request: Request, counted: list[tuple[Rule, str]],
                          guard: tuple[StatementGuard, CurrentUser] | None = None
                          ) -> tuple[list[Decision], Mapping | None]:
    """`count`, and with a guard its facts about the caller read in the same statement (the row's mapping)."""
    now = datetime.now(UTC)
    windows = [(rule, _bucket(rule, subject), *_window(rule, now)) for rule, subject in counted]
    buckets, starts = [bucket for _, bucket, _, _ in windows], [start for _, _, start, _ in windows]

    def statement(dialect) -> tuple[str, tuple]:
        if guard is None:
            return _COUNT_DRIVER, (buckets, starts)
        compiled = _with_facts(guard[0].facts, dialect)
        return compiled[0], (*driver_args(compiled, guard[0].params(guard[1])), buckets, starts)

    if get_session in request.app.dependency_overrides:  # tests: their own (savepoint) sessions
        async with app_session(request) as session:
            connection = await session.connection()
            rows = [row._mapping for row in (await connection.exec_driver_sql(*statement(connection.dialect))).all()]
            await session.commit()
    else:
        engine = request.app.state.engine
        sql, args = statement(engine.dialect)
        rows = await _count_on_pooled_connection(engine, buckets, starts, now, sql=sql, args=args)
    hits = {row["bucket"]: row["hits"] for row in rows}
    return [Decision(rule, hits[bucket], reset_after) for rule, bucket, _, reset_after in windows], rows[0]


async def _count_on_pooled_connection(engine, buckets: list[str], starts: list[datetime], now: datetime, *,
                                      sql: str = _COUNT_DRIVER, args: tuple | None = None) -> list:
    """The count as one statement on a pooled connection, through asyncpg itself (a prepared statement from
    its cache), outside any transaction: SQLAlchemy's Connection and execution context around it cost more
    service CPU than the statement's round trip. The pool still checks the connection out (pinging one that
    sat idle) and takes it back; a connection whose statement failed is discarded, not reused."""
    pooled = await engine.raw_connection()
    try:
        driver = pooled.driver_connection
        rows = await driver.fetch(sql, *(args if args is not None else (buckets, starts)))
        if random.random() < 0.001:  # purge now and then instead of a job; old windows are never read
            await driver.execute("DELETE FROM rate_limits WHERE window_start < $1", now - PURGE_AFTER)
    except BaseException as exc:
        await greenlet_spawn(pooled.invalidate, exc if isinstance(exc, Exception) else None)
        raise
    finally:
        await greenlet_spawn(pooled.close)  # back to the pool (or closed, past its size): may await the driver
    return rows


def refuse(decision: Decision, detail: str = "Too many requests; slow down.") -> RateLimited:
    return RateLimited(detail, retry_after=max(1, decision.reset_after), limit=decision.rule.limit,
                       rule=decision.rule.name)


# (method or "*", path pattern, rule name) → the settings field holding "<limit>/<period seconds>".
ROUTE_RULES: tuple[tuple[str, re.Pattern, str], ...] = (
    ("POST", re.compile(r"^/auth/(login|refresh)$"), "rate_limit_login"),
    ("*", re.compile(r"^/scim/v2(/|$)"), "rate_limit_scim"),
    ("POST", re.compile(r"^/auth/tokens$"), "rate_limit_token_create"),
    ("*", re.compile(r"^/api/v1/people/[^/]+/follow$"), "rate_limit_follow"),
    ("POST", re.compile(r"^/api/v1/posts(/[^/]+/comments)?$"), "rate_limit_post"),
    ("POST", re.compile(r"^/api/v1/conversations/[^/]+/messages$"), "rate_limit_post"),
)


def parse_rule(name: str, value: str) -> Rule:
    """`"200/60"`: 200 requests per 60 seconds."""
    limit, _, period = value.partition("/")
    rule = Rule(name=name.removeprefix("rate_limit_"), limit=int(limit), period=int(period or 60))
    if rule.limit < 1 or not 1 <= rule.period <= PURGE_AFTER.total_seconds():
        raise ValueError(f"{name}: a limit of at least 1 per 1 to 86400 seconds")
    return rule


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, settings):
        self.app = app
        self.person_rule = parse_rule("rate_limit_person", settings.rate_limit_person)
        self.address_rule = parse_rule("rate_limit_address", settings.rate_limit_address)
        self.route_rules = [(method, pattern, parse_rule(field, getattr(settings, field)))
                            for method, pattern, field in ROUTE_RULES]
        self.enabled = settings.rate_limits_on

    def rules_for(self, method: str, path: str, caller: str | None) -> list[Rule]:
        """The rules a request is counted under: per person (token) or per address, and its route's own."""
        return [self.person_rule if caller else self.address_rule] + [
            rule for m, pattern, rule in self.route_rules if m in ("*", method) and pattern.match(path)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled or scope["path"] in UNLIMITED_PATHS:
            return await self.app(scope, receive, send)
        request = Request(scope, receive)
        token, user = await _caller(request)
        caller = None if user is None else f"token:{user.token_id}" if user.is_api_token else f"person:{user.id}"
        # Only an anonymous caller is counted by address (working the address out is not free).
        subject = caller or f"ip:{request_client_address(request) or 'unknown'}"
        guard = guard_for(request.app.state, user) if user is not None else None
        guard = (guard, user) if isinstance(guard, StatementGuard) else None
        decisions, facts = await count_and_guard(
            request, [(rule, subject) for rule in self.rules_for(scope["method"], scope["path"], caller)], guard)
        if guard is not None:  # current_user takes this verdict instead of asking the guard again
            setattr(request.state, GUARDED, (token, guard[0].verdict(facts, user)))
        tightest = min(decisions, key=lambda d: (d.allowed, d.remaining))
        headers = [(b"ratelimit-limit", b"%d" % tightest.rule.limit),
                   (b"ratelimit-remaining", b"%d" % tightest.remaining),
                   (b"ratelimit-reset", b"%d" % tightest.reset_after)]
        if not tightest.allowed:
            error = refuse(tightest)
            response = problem(error.status, error.code, error.title, error.detail, request, error.headers,
                               **error.data)
            response.raw_headers.extend(headers)
            return await response(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _caller(request: Request) -> tuple[str | None, CurrentUser | None]:
    """The bearer token and its caller, verified; (None, None) otherwise (counted by address)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None, None
    try:
        return token, await request.app.state.verifier.verify(token)
    except AppError:
        return None, None
