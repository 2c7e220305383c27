"""Sign-in with OpenID Connect: authorization code flow with PKCE (S256), state and nonce.

The state, nonce and PKCE verifier of a started sign-in wait in `sso_logins` (any replica can take
the callback) and are consumed by the first callback that presents the state, so a replayed callback
fails. The ID token is checked against the provider's JWKS (discovered), issuer, audience, expiry
and nonce before a person is matched.
"""

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import jwt
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.posts.auth.models import SsoLogin
from services.posts.auth.own_session import own_session
from services.posts.auth.schemas import TokenPair
from services.posts.auth.service import TokenIssuer, issue_pair, token_hash
from services.posts.config import Settings
from services.posts.people.models import Person
from shared.db import utcnow
from shared.errors import AppError, Forbidden, InvalidInput, NotFound, Unauthorized

# Asymmetric algorithms only: "none" and HMAC (keyed with the client secret) are never accepted.
ID_TOKEN_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                                 "EdDSA"})
CLOCK_SKEW = timedelta(seconds=30)


class SsoNotConfigured(NotFound):
    code, title = "sso-not-configured", "SSO is not configured"


class SsoProviderUnavailable(AppError):
    status, code, title = 502, "sso-provider-unavailable", "Identity provider unavailable"


class InvalidSsoState(AppError):
    status, code, title = 400, "sso-invalid-state", "Unknown or expired sign-in"


class SsoDenied(Unauthorized):
    code, title = "sso-denied", "The identity provider refused the sign-in"


class InvalidIdToken(Unauthorized):
    code, title = "sso-invalid-id-token", "Invalid ID token"


class SsoPersonNotAllowed(Forbidden):
    code, title = "sso-person-not-allowed", "No active Hearth account for this identity"


class OidcClient:
    """One provider: its discovery document and signing keys, fetched once and kept per process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._metadata: dict | None = None
        self._keys: dict[str, jwt.PyJWK] = {}

    async def _get_json(self, url: str) -> dict:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(url)
                response.raise_for_status()
                return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SsoProviderUnavailable(f"The identity provider did not answer properly: {exc!r}")

    async def metadata(self) -> dict:
        if self._metadata is None:
            document = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            # OIDC Discovery §4.3: the document must name the issuer we asked, or it is not our provider.
            if document.get("issuer", "").rstrip("/") != self.issuer:
                raise SsoProviderUnavailable("The discovery document names another issuer.")
            self._metadata = document
        return self._metadata

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        if kid not in self._keys:  # first use or the provider rotated its keys
            jwks = await self._get_json((await self.metadata())["jwks_uri"])
            try:
                self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
            except jwt.PyJWTError as exc:
                raise SsoProviderUnavailable(f"The provider's JWKS is unusable: {exc}")
        if kid not in self._keys:
            raise InvalidIdToken("The ID token was signed with a key the provider does not publish.")
        return self._keys[kid]

    async def authorization_url(self, *, state: str, nonce: str, code_challenge: str) -> str:
        params = {"response_type": "code", "client_id": self.settings.oidc_client_id,
                  "redirect_uri": self.settings.oidc_redirect_uri, "scope": self.settings.oidc_scopes,
                  "state": state, "nonce": nonce, "code_challenge": code_challenge, "code_challenge_method": "S256"}
        return f"{(await self.metadata())['authorization_endpoint']}?{urlencode(params)}"

    async def exchange(self, *, code: str, code_verifier: str) -> dict:
        """Trade the authorization code for tokens (client_secret_basic unless only _post is offered)."""
        metadata = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.oidc_redirect_uri,
                "code_verifier": code_verifier}
        auth = (self.settings.oidc_client_id, self.settings.oidc_client_secret)
        if "client_secret_basic" not in metadata.get("token_endpoint_auth_methods_supported", ["client_secret_basic"]):
            form |= {"client_id": auth[0], "client_secret": auth[1]}
            auth = None
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(metadata["token_endpoint"], data=form, auth=auth)
        except httpx.HTTPError as exc:
            raise SsoProviderUnavailable(f"The token endpoint did not answer: {exc!r}")
        if response.status_code >= 500:
            raise SsoProviderUnavailable(f"The token endpoint failed with {response.status_code}.")
        body = _json_or_empty(response)
        if response.status_code != 200 or "id_token" not in body:
            raise SsoDenied("The identity provider refused the authorization code.",
                            provider_error=str(body.get("error", response.status_code)))
        return body

    async def validate_id_token(self, id_token: str, *, nonce: str) -> dict:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise InvalidIdToken("The ID token is malformed.")
        algorithm = header.get("alg")
        if algorithm not in ID_TOKEN_ALGORITHMS:
            raise InvalidIdToken(f"The ID token algorithm {algorithm!r} is not accepted.")
        key = await self._key(header.get("kid"))
        try:
            claims = jwt.decode(id_token, key=key.key, algorithms=[algorithm], audience=self.settings.oidc_client_id,
                                issuer=self.issuer, leeway=CLOCK_SKEW,
                                options={"require": ["iss", "aud", "exp", "iat", "sub"]})
        except jwt.ExpiredSignatureError:
            raise InvalidIdToken("The ID token has expired.")
        except jwt.PyJWTError as exc:
            raise InvalidIdToken(f"The ID token is invalid: {exc}")
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise InvalidIdToken("The ID token was not issued for this sign-in (nonce mismatch).")
        return claims


def _json_or_empty(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def start_login(session: AsyncSession, *, client: OidcClient) -> str:
    """Remember a new sign-in's secrets and return the provider URL to send the browser to."""
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    url = await client.authorization_url(state=state, nonce=nonce, code_challenge=_s256(verifier))
    now = utcnow()
    await session.execute(delete(SsoLogin).where(SsoLogin.expires_at < now))  # abandoned sign-ins
    session.add(SsoLogin(state_hash=token_hash(state), nonce=nonce, code_verifier=verifier,
                         expires_at=now + timedelta(seconds=client.settings.oidc_login_ttl_seconds)))
    return url


async def _consume_state(session: AsyncSession, state: str) -> SsoLogin:
    # Spent in a session of its own, committed before the provider is called: the state is gone even if
    # the rest of the sign-in fails, so a callback can never be replayed.
    async with own_session(session) as own:
        login = await own.scalar(delete(SsoLogin).where(SsoLogin.state_hash == token_hash(state))
                                 .returning(SsoLogin))
    if login is None or login.expires_at <= utcnow():
        raise InvalidSsoState("This sign-in is unknown, expired or already finished; start again.")
    return login


async def _match_person(session: AsyncSession, claims: dict) -> Person:
    """The provider's subject (SCIM external_id) first, else a verified email; only an active person."""
    email = str(claims.get("email", "")).strip().lower()
    by_email = Person.email == email if email and claims.get("email_verified", True) is not False else None
    conditions = [Person.external_id == claims["sub"]] + ([by_email] if by_email is not None else [])
    candidates = list(await session.scalars(select(Person).where(or_(*conditions))))
    person = next((p for p in candidates if p.external_id == claims["sub"]), None) or next(iter(candidates), None)
    if person is None or not person.active:
        raise SsoPersonNotAllowed("No active Hearth account matches this identity.")
    return person


async def finish_login(session: AsyncSession, *, client: OidcClient, issuer: TokenIssuer, state: str,
                       code: str | None, error: str | None) -> TokenPair:
    """Complete a sign-in from the provider's redirect and sign the person in like /auth/login does."""
    login = await _consume_state(session, state)
    if error:
        raise SsoDenied("The identity provider did not sign the person in.", provider_error=error)
    if not code:
        raise InvalidInput("The callback has no authorization code.", field="code")
    tokens = await client.exchange(code=code, code_verifier=login.code_verifier)
    claims = await client.validate_id_token(tokens["id_token"], nonce=login.nonce)
    person = await _match_person(session, claims)
    return await issue_pair(session, issuer=issuer, person=person, family_id=uuid7())
