"""OIDC sign-in against a real, local identity provider served over HTTP by uvicorn in a thread."""

import base64
import hashlib
import secrets
import socket
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from services.posts.auth.models import RefreshToken, SsoLogin
from services.posts.main import create_app
from services.posts.people.models import Person
from shared.testing import client_for

CLIENT_ID, CLIENT_SECRET = "hearth-web", "provider-client-secret"
REDIRECT_URI = "http://test/auth/sso/callback"


class LocalProvider:
    """A tiny OpenID provider: discovery, JWKS, auto-approving authorize, token endpoint with PKCE."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.identity: dict = {}
        self.id_token_overrides: dict = {}
        self.codes: dict[str, dict] = {}
        self.app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery), Route("/jwks", self.jwks),
            Route("/authorize", self.authorize), Route("/token", self.token, methods=["POST"])])

    async def discovery(self, request: Request):
        return JSONResponse({"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                             "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
                             "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"],
                             "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                             "code_challenge_methods_supported": ["S256"]})

    async def jwks(self, request: Request):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [jwk | {"kid": "provider-key", "use": "sig", "alg": "RS256"}]})

    async def authorize(self, request: Request):
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256" or not q.get("nonce"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"],
                            "identity": dict(self.identity), "used": False}
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

    async def token(self, request: Request):
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}  # no multipart dependency
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.get(form.get("code", ""))
        if grant is None or grant["used"] or grant["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        grant["used"] = True
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": grant["nonce"],
                  **grant["identity"], **self.id_token_overrides}
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "provider-key"})
        return JSONResponse({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def provider():
    local = LocalProvider()
    server = uvicorn.Server(uvicorn.Config(local.app, host="127.0.0.1", port=local.port, log_level="warning",
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the local OIDC provider did not start"
        time.sleep(0.01)
    yield local
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def sso_app(settings, provider):
    return create_app(settings.model_copy(update={"oidc_issuer": provider.url, "oidc_client_id": CLIENT_ID,
                                                  "oidc_client_secret": CLIENT_SECRET,
                                                  "oidc_redirect_uri": REDIRECT_URI}))


@pytest.fixture
async def sso_client(sso_app, sessionmaker, provider):
    provider.identity, provider.id_token_overrides = {}, {}
    async with client_for(sso_app, sessionmaker) as client:
        yield client
    sso_app.dependency_overrides.clear()


async def approve(client) -> str:
    """Start a sign-in and let the provider approve it; the callback URL the browser would follow."""
    start = await client.get("/auth/sso/login")
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient() as browser:
        approved = await browser.get(start.headers["location"])
    assert approved.status_code == 302, approved.text
    return approved.headers["location"]


async def refresh_tokens(session) -> int:
    return await session.scalar(select(func.count()).select_from(RefreshToken))


async def test_sso_signs_in_an_active_person_with_the_same_token_pair_as_login(sso_client, provider, session,
                                                                                make_person):
    person = await make_person(email="kim@corp.local")
    provider.identity = {"sub": "idp-kim", "email": "Kim@corp.local", "email_verified": True}
    start = await sso_client.get("/auth/sso/login")
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]
    assert query["redirect_uri"] == [REDIRECT_URI] and "openid" in query["scope"][0].split()
    response = await sso_client.get(await approve(sso_client))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    me = await sso_client.get("/api/v1/people/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["id"] == str(person.id)
    assert (await sso_client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})).status_code == 200


async def test_subject_matching_the_scim_external_id_wins_over_email(sso_client, provider, make_person):
    person = await make_person(email="lee@corp.local", external_id="idp-lee")
    await make_person(email="lee.other@corp.local")
    provider.identity = {"sub": "idp-lee", "email": "lee.other@corp.local"}
    body = (await sso_client.get(await approve(sso_client))).json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == str(person.id)


async def test_unknown_state_is_refused_and_signs_nobody_in(sso_client, provider, session, make_person):
    await make_person(email="mo@corp.local")
    provider.identity = {"sub": "idp-mo", "email": "mo@corp.local"}
    callback = await approve(sso_client)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    forged = await sso_client.get("/auth/sso/callback", params={"code": code, "state": secrets.token_urlsafe(32)})
    assert forged.status_code == 400 and forged.json()["code"] == "sso-invalid-state"
    assert forged.headers["content-type"] == "application/problem+json"
    assert await refresh_tokens(session) == 0


async def test_expired_state_is_refused(sso_client, provider, session, make_person):
    await make_person(email="ned@corp.local")
    provider.identity = {"sub": "idp-ned", "email": "ned@corp.local"}
    callback = await approve(sso_client)
    from shared.db import utcnow
    await session.execute(update(SsoLogin).values(expires_at=utcnow()))
    await session.commit()
    response = await sso_client.get(callback)
    assert response.status_code == 400 and response.json()["code"] == "sso-invalid-state"


async def test_replayed_callback_and_replayed_code_are_refused(sso_client, provider, session, make_person):
    await make_person(email="ola@corp.local")
    provider.identity = {"sub": "idp-ola", "email": "ola@corp.local"}
    callback = await approve(sso_client)
    assert (await sso_client.get(callback)).status_code == 200
    replay = await sso_client.get(callback)
    assert replay.status_code == 400 and replay.json()["code"] == "sso-invalid-state"
    # The same code under a fresh state: the provider refuses it (used once, and bound to another verifier).
    fresh_state = parse_qs(urlsplit(await approve(sso_client)).query)["state"][0]
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    reused = await sso_client.get("/auth/sso/callback", params={"code": old_code, "state": fresh_state})
    assert reused.status_code == 401 and reused.json()["code"] == "sso-denied"
    assert reused.json()["provider_error"] == "invalid_grant"
    assert await refresh_tokens(session) == 1


@pytest.mark.parametrize("override", [{"nonce": "someone-elses-nonce"}, {"aud": "another-client"},
                                      {"exp": int(time.time()) - 600, "iat": int(time.time()) - 900},
                                      {"iss": "https://impostor.example"}])
async def test_id_token_with_wrong_nonce_audience_expiry_or_issuer_is_refused(sso_client, provider, session,
                                                                              make_person, override):
    await make_person(email=f"pat{len(str(override))}@corp.local")
    provider.identity = {"sub": "idp-pat", "email": f"pat{len(str(override))}@corp.local"}
    provider.id_token_overrides = override
    response = await sso_client.get(await approve(sso_client))
    assert response.status_code == 401 and response.json()["code"] == "sso-invalid-id-token"
    assert await refresh_tokens(session) == 0


async def test_unknown_unverified_or_deactivated_person_is_forbidden(sso_client, provider, session, make_person):
    gone = await make_person(email="quin@corp.local")
    await session.execute(update(Person).where(Person.id == gone.id).values(active=False))
    await session.commit()
    await make_person(email="rae@corp.local")
    for identity in ({"sub": "idp-x", "email": "stranger@corp.local"}, {"sub": "idp-q", "email": "quin@corp.local"},
                     {"sub": "idp-r", "email": "rae@corp.local", "email_verified": False}):
        provider.identity = identity
        response = await sso_client.get(await approve(sso_client))
        assert response.status_code == 403, identity
        assert response.json()["code"] == "sso-person-not-allowed"
    assert await refresh_tokens(session) == 0


async def test_provider_error_and_bad_callback_input_are_problems(sso_client, session):
    callback_state = parse_qs(urlsplit((await sso_client.get("/auth/sso/login")).headers["location"]).query)["state"][0]
    denied = await sso_client.get("/auth/sso/callback", params={"state": callback_state, "error": "access_denied"})
    assert denied.status_code == 401 and denied.json()["provider_error"] == "access_denied"
    missing = await sso_client.get("/auth/sso/callback", params={"code": "abc"})
    assert missing.status_code == 422 and missing.headers["content-type"] == "application/problem+json"
    assert await refresh_tokens(session) == 0


async def test_sso_is_404_when_not_configured(client):
    response = await client.get("/auth/sso/login")
    assert response.status_code == 404 and response.json()["code"] == "sso-not-configured"
