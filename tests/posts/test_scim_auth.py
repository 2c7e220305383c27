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
