import json
from datetime import timedelta
from uuid import uuid4

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import shared.auth
from shared.auth import (API_TOKEN_TYPE, SCOPES, InvalidKey, SigningKey, TokenVerifier, public_jwks_from_pem,
                         required_scope)
from shared.errors import Unauthorized


@pytest.mark.parametrize("method, path, scope", [
    ("GET", "/api/v1/posts/123", "posts:read"), ("POST", "/api/v1/posts", "posts:write"),
    ("GET", "/api/v1/feeds/home", "posts:read"), ("GET", "/api/v1/search", "posts:read"),
    ("DELETE", "/api/v1/groups/1/members/2", "groups:write"), ("GET", "/api/v1/conversations", "messages:read"),
    ("GET", "/api/v1/analytics/overview", "analytics:read"), ("GET", "/api/v1/people/me", "people:read"),
    ("PATCH", "/api/v1/people/me", None), ("POST", "/api/v1/analytics/reports", None),
    ("GET", "/api/v1/admin/audit", None), ("POST", "/auth/tokens", None), ("GET", "/api/v1/postsx", None)])
def test_required_scope_by_path_and_method(method, path, scope):
    assert required_scope(method, path) == scope
    assert scope is None or scope in SCOPES


def verifier_for(*keys: SigningKey) -> TokenVerifier:
    return TokenVerifier(issuer="hearth", audience="hearth", jwks_json=json.dumps({"keys": [k.public_jwk() for k in keys]}))


async def test_api_token_claims_become_token_id_and_scopes():
    key = SigningKey(SigningKey.generate_pem())
    token_id = uuid4()
    token = key.sign(subject=uuid4(), roles=["member"], scopes=["posts:read"], ttl=timedelta(days=1), issuer="hearth",
                     audience="hearth", token_id=str(token_id), token_type=API_TOKEN_TYPE)
    user = await verifier_for(key).verify(token)
    assert user.is_api_token and user.token_id == token_id and user.scopes == {"posts:read"}
    session_user = await verifier_for(key).verify(key.sign(subject=uuid4(), roles=["member"], scopes=None,
                                                           ttl=timedelta(minutes=5), issuer="hearth", audience="hearth"))
    assert not session_user.is_api_token and session_user.scopes is None


async def test_api_token_without_jti_is_refused():
    key = SigningKey(SigningKey.generate_pem())
    token = key.sign(subject=uuid4(), roles=["member"], scopes=["posts:read"], ttl=timedelta(days=1), issuer="hearth",
                     audience="hearth", token_type=API_TOKEN_TYPE)
    with pytest.raises(Unauthorized):
        await verifier_for(key).verify(token)


async def test_verifier_accepts_current_and_previous_keys_from_one_jwks():
    current, previous = SigningKey(SigningKey.generate_pem()), SigningKey(SigningKey.generate_pem())
    previous_public = previous.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwks = {"keys": [current.public_jwk(), *public_jwks_from_pem(previous_public)]}
    verifier = TokenVerifier(issuer="hearth", audience="hearth", jwks_json=json.dumps(jwks))
    for key in (current, previous):
        token = key.sign(subject=uuid4(), roles=[], scopes=None, ttl=timedelta(minutes=5), issuer="hearth",
                         audience="hearth")
        assert jwt.get_unverified_header(token)["kid"] == key.kid
        await verifier.verify(token)


def test_previous_keys_must_be_p256():
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(InvalidKey):
        public_jwks_from_pem(rsa_pem)
    assert public_jwks_from_pem(b"") == []


async def test_a_verified_token_is_remembered_until_it_expires_and_forgotten_on_new_keys(monkeypatch):
    key, other = SigningKey(SigningKey.generate_pem()), SigningKey(SigningKey.generate_pem())
    verifier = verifier_for(key)
    token = key.sign(subject=uuid4(), roles=["member"], scopes=None, ttl=timedelta(minutes=5), issuer="hearth",
                     audience="hearth")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # the second check (rate limiter, then route) is a lookup
    async def checked_again(token):
        raise Unauthorized("The access token has expired.")

    real_time = shared.auth.time.time
    monkeypatch.setattr(shared.auth.time, "time", lambda: real_time() + 301)
    monkeypatch.setattr(verifier, "_verify", checked_again)
    with pytest.raises(Unauthorized):  # past its expiry the token is verified again, not taken from the cache
        await verifier.verify(token)
    monkeypatch.undo()
    await verifier.verify(token)
    verifier.load_jwks({"keys": [other.public_jwk()]})  # the signing key was withdrawn
    with pytest.raises(Unauthorized):
        await verifier.verify(token)


async def test_the_verified_tokens_are_a_bounded_lru(monkeypatch):
    monkeypatch.setattr(shared.auth, "VERIFIED_CACHE_SIZE", 2)
    key = SigningKey(SigningKey.generate_pem())
    verifier = verifier_for(key)
    first, second, third = (key.sign(subject=uuid4(), roles=[], scopes=None, ttl=timedelta(minutes=5),
                                     issuer="hearth", audience="hearth") for _ in range(3))
    verified = {token: await verifier.verify(token) for token in (first, second)}
    assert await verifier.verify(first) is verified[first]  # used again: now the most recent
    await verifier.verify(third)  # over the bound: the least recently used (second) goes, not the first
    assert list(verifier._verified) == [first, third]
    assert await verifier.verify(first) is verified[first]
    assert await verifier.verify(second) is not verified[second]  # verified again (an equal, new answer)
    assert len(verifier._verified) == 2
