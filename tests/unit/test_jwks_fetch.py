"""A service that starts before posts gets 503 (retry), not 401, and accepts tokens once the JWKS is served."""

import asyncio
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import uuid4

import pytest

from shared.auth import KeysUnavailable, SigningKey, TokenVerifier
from shared.devstack.ports import free_port
from shared.errors import Unauthorized
from tests.waiting import eventually


class JwksServer:
    """posts' /.well-known/jwks.json, started when the test says so; counts the fetches."""

    def __init__(self, port: int, keys: list[SigningKey]):
        self.port, self.fetches = port, 0
        document = json.dumps({"keys": [k.public_jwk() for k in keys]}).encode()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.fetches += 1
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def token(key: SigningKey) -> str:
    return key.sign(subject=uuid4(), roles=["member"], scopes=None, ttl=timedelta(minutes=5), issuer="hearth",
                    audience="hearth")


async def verify_until_accepted(verifier, signed):
    async def attempt():
        try:
            return await verifier.verify(signed)
        except KeysUnavailable:  # posts' keys not fetched yet: the client is told to retry
            return None

    return await eventually(attempt, lambda user: user is not None, timeout=10, message="the token to be accepted")


async def test_tokens_are_503_while_posts_is_down_and_accepted_once_it_is_back():
    key, port = SigningKey(SigningKey.generate_pem()), free_port()
    verifier = TokenVerifier(issuer="hearth", audience="hearth", jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    signed = token(key)
    for _ in range(3):
        with pytest.raises(KeysUnavailable) as refused:
            await verifier.verify(signed)
        assert refused.value.status == 503 and int(refused.value.headers["Retry-After"]) >= 1
    server = JwksServer(port, [key])  # posts comes up late
    try:
        user = await verify_until_accepted(verifier, signed)
        assert user.roles == {"member"}
        for _ in range(5):
            await verifier.verify(token(key))
        assert server.fetches == 1  # kept, not fetched per request
    finally:
        server.stop()


async def test_concurrent_first_requests_share_one_fetch():
    key, port = SigningKey(SigningKey.generate_pem()), free_port()
    server = JwksServer(port, [key])
    try:
        verifier = TokenVerifier(issuer="hearth", audience="hearth", jwks_url=f"http://127.0.0.1:{port}/jwks.json")
        await asyncio.gather(*(verifier.verify(token(key)) for _ in range(10)))
        assert server.fetches == 1
    finally:
        server.stop()


async def test_an_unknown_kid_with_posts_up_is_401_and_refetches_at_most_once_per_interval():
    key, stranger, port = SigningKey(SigningKey.generate_pem()), SigningKey(SigningKey.generate_pem()), free_port()
    server = JwksServer(port, [key])
    try:
        verifier = TokenVerifier(issuer="hearth", audience="hearth", jwks_url=f"http://127.0.0.1:{port}/jwks.json",
                                 refresh_interval=3600)
        await verifier.verify(token(key))
        for _ in range(5):
            with pytest.raises(Unauthorized):
                await verifier.verify(token(stranger))
        assert server.fetches == 1
    finally:
        server.stop()
