"""Revocation end to end: posts revokes, people.v1 carries it, and messaging and analytics refuse the token
from their own read models (no call to posts per request) — and accept it again after a reactivation."""

from itertools import count

from tests.e2e.conftest import ADMIN, eventually

_seq = count(1)
SCIM = {"Authorization": "Bearer change-me", "Content-Type": "application/scim+json"}  # the dev default (HEARTH_ENV=test)
READERS = {"messaging": "/api/v1/conversations", "analytics": "/api/v1/analytics/overview"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(http, stack, email: str, password: str) -> dict:
    response = await http.post(f"{stack.urls['posts']}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


async def staff_member(http, stack) -> tuple[dict, str]:
    """A new person who may read analytics (communications), and their password."""
    admin = bearer((await sign_in(http, stack, ADMIN["email"], ADMIN["password"]))["access_token"])
    n = next(_seq)
    response = await http.post(f"{stack.urls['posts']}/api/v1/people", headers=admin, json={
        "email": f"e2e.revoke{n}@corp.local", "display_name": f"Revoke {n}", "password": "e2e-password",
        "roles": ["member", "communications"]})
    assert response.status_code == 201, response.text
    return response.json(), "e2e-password"


async def api_token(http, stack, headers: dict) -> dict:
    response = await http.post(f"{stack.urls['posts']}/auth/tokens", headers=headers,
                               json={"name": "integration", "scopes": ["messages:read", "analytics:read"]})
    assert response.status_code == 201, response.text
    return response.json()


async def answers(http, stack, headers: dict) -> dict[str, tuple[int, str | None]]:
    """Each reading service's (status, problem code) for these credentials."""
    found = {}
    for service, path in READERS.items():
        response = await http.get(f"{stack.urls[service]}{path}", headers=headers)
        code = response.json().get("code") if response.status_code >= 400 else None
        found[service] = (response.status_code, code)
    return found


def everywhere(status: int, code: str | None = None) -> dict:
    return {service: (status, code) for service in READERS}


async def test_a_revoked_api_token_and_an_ended_session_are_refused_by_messaging_and_analytics(http, stack):
    person, password = await staff_member(http, stack)
    ended, kept = [await sign_in(http, stack, person["email"], password) for _ in range(2)]
    token = await api_token(http, stack, bearer(kept["access_token"]))
    credentials = {"api token": bearer(token["token"]), "ended session": bearer(ended["access_token"]),
                   "other session": bearer(kept["access_token"])}
    for name, headers in credentials.items():  # bounded: the services learn the new person from people.v1
        await eventually(lambda headers=headers: answers(http, stack, headers), lambda a: a == everywhere(200),
                         message=f"the {name} to be accepted")

    revoked = await http.delete(f"{stack.urls['posts']}/auth/tokens/{token['id']}", headers=credentials["other session"])
    assert revoked.status_code == 204, revoked.text
    logout = await http.post(f"{stack.urls['posts']}/auth/logout", json={"refresh_token": ended["refresh_token"]})
    assert logout.status_code == 204, logout.text

    await eventually(lambda: answers(http, stack, credentials["api token"]),
                     lambda a: a == everywhere(401, "token-revoked"), message="the revocation to reach both services")
    await eventually(lambda: answers(http, stack, credentials["ended session"]),
                     lambda a: a == everywhere(401, "session-ended"), message="the logout to reach both services")
    assert await answers(http, stack, credentials["other session"]) == everywhere(200)  # only what was ended


async def test_an_api_token_is_refused_while_its_person_is_deactivated_and_works_again_after(http, stack):
    person, password = await staff_member(http, stack)
    session = await sign_in(http, stack, person["email"], password)
    token = bearer((await api_token(http, stack, bearer(session["access_token"])))["token"])
    await eventually(lambda: answers(http, stack, token), lambda a: a == everywhere(200),
                     message="the token to be accepted")

    async def set_active(active: bool) -> None:
        response = await http.patch(f"{stack.urls['posts']}/scim/v2/Users/{person['id']}", headers=SCIM, json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": active}]})
        assert response.status_code == 200 and response.json()["active"] is active, response.text

    await set_active(False)
    await eventually(lambda: answers(http, stack, token), lambda a: all(s == 401 for s, _ in a.values()),
                     message="the deactivation to reach both services")
    await set_active(True)
    await eventually(lambda: answers(http, stack, token), lambda a: a == everywhere(200),
                     message="the reactivation to reach both services")
