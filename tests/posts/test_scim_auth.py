"""SCIM bearer tokens: guessing is throttled per address, two tokens work during rotation, prod wants long ones."""

import pytest
from pydantic import ValidationError

from services.posts.config import Settings
from services.posts.main import create_app
from shared.testing import client_for

CURRENT, NEXT = "current-scim-token-" + "c" * 20, "next-scim-token-" + "n" * 20


@pytest.fixture
async def scim_client(settings, sessionmaker):
    app = create_app(settings.model_copy(update={"scim_token": CURRENT, "scim_token_next": NEXT,
                                                 "scim_auth_failures": "3/600"}))
    async with client_for(app, sessionmaker) as client:
        yield client


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_both_the_current_and_the_next_token_are_accepted(scim_client):
    for token in (CURRENT, NEXT):
        assert (await scim_client.get("/scim/v2/Users", headers=bearer(token))).status_code == 200
    assert (await scim_client.get("/scim/v2/Users", headers=bearer(CURRENT + "x"))).status_code == 401


async def test_guessing_is_throttled_per_address_even_for_the_right_token_afterwards(scim_client):
    for n in range(3):
        assert (await scim_client.get("/scim/v2/Users", headers=bearer(f"guess-{n}"))).status_code == 401
    for headers in (bearer("guess-4"), bearer(CURRENT)):
        refused = await scim_client.get("/scim/v2/Users", headers=headers)
        assert refused.status_code == 429 and refused.headers["content-type"] == "application/scim+json"
        assert refused.json()["status"] == "429" and int(refused.headers["retry-after"]) >= 1


def test_prod_refuses_short_or_placeholder_scim_tokens():
    long_secret = "s" * 40
    base = {"env": "prod", "admin_password": "a-real-admin-password", "jwt_private_key": "set"}
    for token, next_token in (("change-me", ""), ("short-but-not-placeholder", ""), (long_secret, "short")):
        with pytest.raises(ValidationError):
            Settings(**base, scim_token=token, scim_token_next=next_token)
    assert Settings(**base, scim_token=long_secret, scim_token_next="").scim_tokens == [long_secret]


async def test_bodies_that_are_not_utf8_json_or_objects_are_scim_errors(scim_client):
    headers = bearer(CURRENT) | {"content-type": "application/scim+json"}
    for body in (b"\xff\xfe\x00{", b"not json", b"[1, 2]", b'{"userName": "a\\u0000b"}',
                 b'{"userName": "ok", "locale": "x\\u0007"}', b'{"userName": "' + b"u" * 400 + b'"}'):
        response = await scim_client.post("/scim/v2/Users", headers=headers, content=body)
        assert response.status_code == 400, (body, response.text)
        assert response.headers["content-type"] == "application/scim+json"
    unknown = await scim_client.get("/scim/v2/Nope", headers=bearer(CURRENT))
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/scim+json"
    wrong_method = await scim_client.delete("/scim/v2/Users", headers=bearer(CURRENT))
    assert wrong_method.status_code == 405 and wrong_method.headers["content-type"] == "application/scim+json"
