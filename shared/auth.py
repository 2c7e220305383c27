"""Access tokens: signed by posts with an asymmetric key, verified locally by every service via JWKS."""

import asyncio
import base64
import hashlib
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal, get_args
from uuid import UUID

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import ECAlgorithm
from sqlalchemy import Column, DateTime, Table, func
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from shared.db import SessionDep
from shared.errors import AppError, Forbidden, InvalidInput, Unauthorized
from shared.outbox import infra_metadata

ALGORITHM = "ES256"
ROLES = ("member", "moderator", "communications", "admin")

# Every scope an integrator API token can carry; the one list the schemas and checks use.
Scope = Literal["posts:read", "posts:write", "messages:read", "messages:write", "notifications:read",
                "notifications:write", "analytics:read", "people:read", "groups:read", "groups:write"]
SCOPES: tuple[str, ...] = get_args(Scope)
API_TOKEN_TYPE = "api"  # the `typ` claim that marks an integrator token (session tokens have none)
API_TOKEN_MAX_DAYS = 365
# No session access token lives longer (posts refuses a longer HEARTH_ACCESS_TOKEN_MINUTES), so a
# revoked session's row can be purged after this.
SESSION_TOKEN_MAX_MINUTES = 24 * 60

# The scope a scoped token needs per path prefix: `<resource>:read` for safe methods, `:write` otherwise.
# Checked for every scoped token in every service, so a route that forgets `require_scope` is still
# closed to a token that was not granted its resource. Paths not listed are for people only.
SCOPE_RESOURCES: tuple[tuple[str, str], ...] = (
    ("/api/v1/posts", "posts"), ("/api/v1/feeds", "posts"), ("/api/v1/search", "posts"),
    ("/api/v1/people", "people"), ("/api/v1/groups", "groups"), ("/api/v1/conversations", "messages"),
    ("/api/v1/messaging", "messages"), ("/api/v1/notifications", "notifications"),
    ("/api/v1/analytics", "analytics"),
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Ended sign-ins (logout, refresh-token reuse, password change, deactivation), by the `sid` claim of
# their access tokens; in every database (posts writes it, the others learn it from people.v1), so
# every service refuses the session's access tokens locally. A row can go once `expires_at` passed.
revoked_sessions_table = Table(
    "revoked_sessions", infra_metadata,
    Column("sid", PG_UUID(as_uuid=True), primary_key=True),
    Column("person_id", PG_UUID(as_uuid=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


class TokenRevoked(Unauthorized):
    code, title = "token-revoked", "Token revoked"


class SessionEnded(Unauthorized):
    code, title = "session-ended", "Session ended"


class MissingScope(Forbidden):
    code, title = "missing-scope", "Missing scope"


class ApiTokenNotAllowed(Forbidden):
    code, title = "api-token-not-allowed", "Not available to API tokens"


class InvalidKey(InvalidInput):
    code, title = "invalid-key", "Invalid key"


@dataclass(frozen=True)
class CurrentUser:
    id: UUID
    roles: frozenset[str]
    scopes: frozenset[str] | None  # None: a person's own session, not limited by scopes
    token_id: UUID | None = None  # the `jti` of an integrator API token; None for a session token
    session_id: UUID | None = None  # the `sid` of a session access token: the sign-in it belongs to

    @property
    def is_api_token(self) -> bool:
        return self.token_id is not None

    def has_role(self, *roles: str) -> bool:
        return "admin" in self.roles or bool(self.roles.intersection(roles))


class SigningKey:
    """A private key with its key id; posts holds one (or more during rotation)."""

    def __init__(self, pem: bytes, kid: str | None = None):
        self.private_key = serialization.load_pem_private_key(pem, password=None)
        self.kid = kid or _thumbprint(self.public_jwk_unlabelled())

    @staticmethod
    def generate_pem() -> bytes:
        key = ec.generate_private_key(ec.SECP256R1())
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def public_jwk_unlabelled(self) -> dict:
        return json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))

    def public_jwk(self) -> dict:
        return self.public_jwk_unlabelled() | {"kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def sign(self, *, subject: UUID, roles: list[str], scopes: list[str] | None, ttl: timedelta, issuer: str,
             audience: str, token_id: str | None = None, token_type: str | None = None,
             session_id: UUID | None = None) -> str:
        now = int(time.time())
        claims = {"sub": str(subject), "roles": roles, "iat": now, "nbf": now, "exp": now + int(ttl.total_seconds()),
                  "iss": issuer, "aud": audience}
        if scopes is not None:
            claims["scope"] = " ".join(scopes)
        if token_id:
            claims["jti"] = token_id
        if token_type:
            claims["typ"] = token_type
        if session_id:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


def public_jwks_from_pem(pem: bytes) -> list[dict]:
    """Public JWKs (with kid) of every P-256 key in a PEM bundle; private blocks give their public part.

    Previous signing keys are configured this way during rotation, so old tokens keep verifying."""
    keys = []
    for block in _PEM_BLOCK.finditer(pem):
        try:
            if b"PRIVATE" in block.group(1):
                key = serialization.load_pem_private_key(block.group(0), password=None).public_key()
            else:
                key = serialization.load_pem_public_key(block.group(0))
        except ValueError as exc:
            raise InvalidKey(f"A configured key is not a readable PEM key: {exc}")
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise InvalidKey(f"Tokens are signed with {ALGORITHM}; every key must be an EC P-256 key.")
        jwk = json.loads(ECAlgorithm.to_jwk(key))
        keys.append(jwk | {"kid": _thumbprint(jwk), "use": "sig", "alg": ALGORITHM})
    return keys


def _thumbprint(jwk: dict) -> str:
    # RFC 7638 thumbprint, so the kid is stable for a given key across restarts and replicas.
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


class KeysUnavailable(AppError):
    status, code, title = 503, "token-keys-unavailable", "Token keys unavailable"


VERIFIED_CACHE_SIZE = 10_000  # tokens kept verified per process (the least recently used goes first)


class TokenVerifier:
    """Verifies bearer tokens against a JWKS document, given inline or fetched (and refreshed) from a URL.

    Keys are fetched lazily, on the first token whose `kid` is not known yet, so a service may start
    before posts: while the JWKS cannot be fetched, requests get 503 (retry) instead of 401, and a
    failed fetch is retried after a short backoff that grows to `max_backoff`. One fetch runs at a
    time; the keys are kept, and a new `kid` (rotation) refetches at most once per `refresh_interval`."""

    def __init__(self, *, issuer: str, audience: str, jwks_json: str = "", jwks_url: str = "",
                 refresh_interval: float = 5.0, first_backoff: float = 0.2, max_backoff: float = 5.0,
                 fetch_timeout: float = 2.0):
        self.issuer, self.audience, self.jwks_url = issuer, audience, jwks_url
        self.refresh_interval, self.first_backoff, self.max_backoff = refresh_interval, first_backoff, max_backoff
        self.fetch_timeout = fetch_timeout
        self._keys: dict[str, object] = {}
        self._next_fetch = 0.0  # monotonic time before which no fetch is tried
        self._backoff = first_backoff
        self._reachable = False  # whether the last fetch worked
        self._lock = asyncio.Lock()
        # Verified tokens until they expire: the rate limiter and the route both verify each request's
        # token, and a client sends the same token for minutes. Safe to keep: the cache is keyed by the
        # whole signed string, and what can change before expiry (revocation, roles) is the guards' job,
        # which still run on every request. Least recently used first; an entry lives until its token's exp.
        self._verified: OrderedDict[str, tuple[CurrentUser, float]] = OrderedDict()
        if jwks_json:
            self.load_jwks(json.loads(jwks_json))
            self._reachable = True

    def load_jwks(self, document: dict) -> None:
        self._keys = {k["kid"]: ECAlgorithm.from_jwk(json.dumps(k)) for k in document.get("keys", [])}
        self._verified = OrderedDict()  # a key may have been withdrawn

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.fetch_timeout) as client:
                response = await client.get(self.jwks_url)
                response.raise_for_status()
            self.load_jwks(response.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            self._reachable = False
            self._next_fetch = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.max_backoff)
            return
        self._reachable, self._backoff = True, self.first_backoff
        self._next_fetch = time.monotonic() + self.refresh_interval

    async def _key(self, kid: str):
        if kid not in self._keys and self.jwks_url:
            async with self._lock:  # the requests that wait here use the fetch the first one made
                if kid not in self._keys and time.monotonic() >= self._next_fetch:
                    await self._fetch()
            if kid not in self._keys and not self._reachable:
                retry = max(1, math.ceil(self._next_fetch - time.monotonic()))
                raise KeysUnavailable("The keys that verify access tokens cannot be fetched yet; retry shortly.",
                                      headers={"Retry-After": str(retry)})
        return self._keys.get(kid)

    async def verify(self, token: str) -> CurrentUser:
        cached = self._verified.get(token)
        if cached is not None:
            if cached[1] > time.time():
                self._verified.move_to_end(token)
                return cached[0]
            del self._verified[token]  # expired: verified again below, which refuses it
        user, expires = await self._verify(token)
        self._verified[token] = (user, expires)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return user

    async def _verify(self, token: str) -> tuple[CurrentUser, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The access token is malformed.")
        key = await self._key(str(header.get("kid", "")))
        if key is None:
            raise Unauthorized("The access token was signed with an unknown key.")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self.audience, issuer=self.issuer,
                                options={"require": ["exp", "sub", "iat"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired.")
        except jwt.PyJWTError:
            raise Unauthorized("The access token is invalid.")
        try:
            subject = UUID(claims["sub"])
        except ValueError:
            raise Unauthorized("The access token is invalid.")
        scope = claims.get("scope")
        token_id = session_id = None
        if "sid" in claims:
            try:
                session_id = UUID(str(claims["sid"]))
            except ValueError:
                raise Unauthorized("The access token is invalid.")
        if claims.get("typ") == API_TOKEN_TYPE:
            # An API token is always scoped and always revocable: both need their claims.
            try:
                token_id = UUID(str(claims["jti"]))
            except (KeyError, ValueError):
                raise Unauthorized("The API token is invalid.")
            scope = scope or ""
        return CurrentUser(id=subject, roles=frozenset(claims.get("roles", [])),
                           scopes=frozenset(scope.split()) if scope is not None else None, token_id=token_id,
                           session_id=session_id), float(claims["exp"])


# A guard re-checks a verified token against what the service knows now (revocations, deactivation,
# roles) and returns the caller as it may act. Each service installs two on app.state: posts from its
# own tables, the others from their people read model (shared.directory, via shared.guards).
TokenGuard = Callable[[AsyncSession, CurrentUser], Awaitable[CurrentUser]]

# Where the rate limiter leaves a StatementGuard's verdict for the request's token (request.state).
GUARDED = "hearth_guarded"


@dataclass(frozen=True)
class StatementGuard:
    """A token guard that is one statement, its facts about the caller (binding `:person_id` and `:sid`),
    and a decision on them (`decide` gets the facts' row as a mapping: None, or all NULL, when there is none).

    Being one statement, the rate limiter runs it in the round trip of its count (shared.ratelimit) and
    leaves the verdict for `current_user`, which then does not ask again: still checked on every request.
    Called as a TokenGuard (no rate limits, or from elsewhere) it reads the facts on the caller's session."""
    facts: Executable
    decide: Callable[[Mapping | None, CurrentUser], CurrentUser]

    def params(self, user: CurrentUser) -> dict:
        return {"person_id": user.id, "sid": user.session_id}

    def verdict(self, facts: Mapping | None, user: CurrentUser) -> CurrentUser | AppError:
        """The caller as they may act, or the error that refuses them (raised by current_user)."""
        try:
            return self.decide(facts, user)
        except AppError as refused:
            return refused

    async def __call__(self, session: AsyncSession, user: CurrentUser) -> CurrentUser:
        # On the session's connection: a plain row, without the ORM's result layer (nothing is pending to flush).
        connection = await session.connection()
        row = (await connection.execute(self.facts, self.params(user))).first()
        return self.decide(None if row is None else row._mapping, user)


def guard_for(state, user: CurrentUser) -> TokenGuard | None:
    """The service's guard for this kind of token (app.state.api_token_guard or session_guard)."""
    return getattr(state, "api_token_guard" if user.is_api_token else "session_guard", None)


def required_scope(method: str, path: str) -> str | None:
    """The scope a scoped token needs for a request; None when scoped tokens may not call it at all."""
    for prefix, resource in SCOPE_RESOURCES:
        if path == prefix or path.startswith(prefix + "/"):
            scope = f"{resource}:{'read' if method.upper() in SAFE_METHODS else 'write'}"
            return scope if scope in SCOPES else None
    return None


def _check_scope(request: Request, user: CurrentUser) -> None:
    scope = required_scope(request.method, request.url.path)
    if scope is None:
        raise ApiTokenNotAllowed("API tokens cannot use this endpoint; sign in as a person.")
    if scope not in user.scopes:
        raise MissingScope(f"This API token lacks the scope {scope}.", required_scope=scope)


# Declares the bearer scheme in every service's OpenAPI; errors stay ours (problem+json, RFC 6750 header).
_bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT",
                            description="An access token from POST /auth/login, or an API token from /auth/tokens.")


async def current_user(request: Request, session: SessionDep,
                       _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)]
                       ) -> CurrentUser:
    """The caller, verified locally, then checked by the service's guard (one read on the request's session).

    The guard refuses revoked API tokens, ended sessions and deactivated people, and takes roles from
    the service's own view of the person, so a change reaches every service within seconds instead
    of when the token expires. An API token without a guard is refused (it could not be revoked)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A bearer access token is required.", error="invalid_request")
    token = token.strip()
    user = await request.app.state.verifier.verify(token)
    guard = guard_for(request.app.state, user)
    guarded = getattr(request.state, GUARDED, None)
    if guarded is not None and guarded[0] == token:  # the rate limiter's round trip ran this token's guard
        if isinstance(guarded[1], AppError):
            raise guarded[1]
        user = guarded[1]
    elif guard is not None:
        user = await guard(session, user)
    elif user.is_api_token:
        raise TokenRevoked("This service cannot check API tokens.")
    if user.scopes is not None:
        _check_scope(request, user)
    request.state.user = user
    return user


CurrentUserDep = Annotated[CurrentUser, Depends(current_user)]


def require_roles(*roles: str):
    """Dependency: the caller holds one of `roles` (admins pass every role check)."""

    async def dependency(user: CurrentUserDep) -> CurrentUser:
        if not user.has_role(*roles):
            raise Forbidden(f"This requires one of the roles: {', '.join(roles)}.")
        return user

    return Depends(dependency)


def require_scope(scope: str):
    """Dependency: an API token must carry `scope`; a person's own session carries every scope."""

    async def dependency(user: CurrentUserDep) -> CurrentUser:
        if user.scopes is not None and scope not in user.scopes:
            raise MissingScope(f"This API token lacks the scope {scope}.", required_scope=scope)
        return user

    return Depends(dependency)
