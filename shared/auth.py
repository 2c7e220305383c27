"""Access tokens: signed by posts with an asymmetric key, verified locally by every service via JWKS."""

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from uuid import UUID

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, Request
from jwt.algorithms import ECAlgorithm

from shared.errors import Forbidden, Unauthorized

ALGORITHM = "ES256"
ROLES = ("member", "moderator", "communications", "admin")


@dataclass(frozen=True)
class CurrentUser:
    id: UUID
    roles: frozenset[str]
    scopes: frozenset[str] | None  # None: a person's own session, not limited by scopes

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
             audience: str, token_id: str | None = None) -> str:
        now = int(time.time())
        claims = {"sub": str(subject), "roles": roles, "iat": now, "nbf": now, "exp": now + int(ttl.total_seconds()),
                  "iss": issuer, "aud": audience}
        if scopes is not None:
            claims["scope"] = " ".join(scopes)
        if token_id:
            claims["jti"] = token_id
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


def _thumbprint(jwk: dict) -> str:
    # RFC 7638 thumbprint, so the kid is stable for a given key across restarts and replicas.
    import base64
    import hashlib
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


class TokenVerifier:
    """Verifies bearer tokens against a JWKS document, given inline or fetched (and refreshed) from a URL."""

    def __init__(self, *, issuer: str, audience: str, jwks_json: str = "", jwks_url: str = "",
                 refresh_interval: float = 30.0):
        self.issuer, self.audience, self.jwks_url, self.refresh_interval = issuer, audience, jwks_url, refresh_interval
        self._keys: dict[str, object] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        if jwks_json:
            self.load_jwks(json.loads(jwks_json))

    def load_jwks(self, document: dict) -> None:
        self._keys = {k["kid"]: ECAlgorithm.from_jwk(json.dumps(k)) for k in document.get("keys", [])}

    async def _key(self, kid: str):
        if kid not in self._keys and self.jwks_url:
            async with self._lock:
                # Refetch on an unknown kid (key rotation), but not more often than refresh_interval.
                if kid not in self._keys and time.monotonic() - self._fetched_at > self.refresh_interval:
                    self._fetched_at = time.monotonic()
                    try:
                        async with httpx.AsyncClient(timeout=5) as client:
                            response = await client.get(self.jwks_url)
                            response.raise_for_status()
                        self.load_jwks(response.json())
                    except (httpx.HTTPError, ValueError, KeyError):
                        self._fetched_at = 0.0  # the issuer may still be starting; try again next request
        return self._keys.get(kid)

    async def verify(self, token: str) -> CurrentUser:
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
        return CurrentUser(id=subject, roles=frozenset(claims.get("roles", [])),
                           scopes=frozenset(scope.split()) if scope is not None else None)


async def current_user(request: Request) -> CurrentUser:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A bearer access token is required.", error="invalid_request")
    user = await request.app.state.verifier.verify(token.strip())
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
            raise Forbidden(f"This API token lacks the scope {scope}.", required_scope=scope)
        return user

    return Depends(dependency)
