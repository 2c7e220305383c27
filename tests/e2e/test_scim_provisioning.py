"""End to end: an identity provider provisions, edits and deactivates a user over SCIM, and the other
services' people read models follow through the outbox, the broker and their consumers."""

import asyncpg

from tests.e2e.conftest import E2E_PREFIX, eventually

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# HEARTH_ENV=test and no HEARTH_SCIM_TOKEN in the stack's environment: the development default applies.
SCIM = {"Authorization": "Bearer change-me", "Content-Type": "application/scim+json"}


async def directory_rows(stack, person_id: str) -> list[tuple | None]:
    rows = []
    for service in ("messaging", "notifications"):
        conn = await asyncpg.connect(stack.server_url.rsplit("/", 1)[0] + f"/{E2E_PREFIX}{service}")
        try:
            row = await conn.fetchrow("SELECT department, active FROM directory_people WHERE id = $1::uuid", person_id)
            rows.append(tuple(row) if row else None)
        finally:
            await conn.close()
    return rows


async def test_scim_changes_reach_the_people_read_models(http, stack):
    users = f"{stack.urls['posts']}/scim/v2/Users"
    response = await http.post(users, headers=SCIM, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE], "userName": "scim.e2e@corp.local",
        "displayName": "SCIM E2E", "externalId": "e2e-1", "active": True, ENTERPRISE: {"department": "Sales"}})
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    await eventually(lambda: directory_rows(stack, user_id), lambda rows: rows == [("Sales", True)] * 2,
                     message="the provisioned user in every read model")

    response = await http.patch(f"{users}/{user_id}", headers=SCIM, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Engineering"}]})
    assert response.status_code == 200, response.text
    await eventually(lambda: directory_rows(stack, user_id), lambda rows: rows == [("Engineering", True)] * 2,
                     message="the department change in every read model")

    response = await http.patch(f"{users}/{user_id}", headers=SCIM, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
    assert response.status_code == 200 and response.json()["active"] is False
    await eventually(lambda: directory_rows(stack, user_id), lambda rows: rows == [("Engineering", False)] * 2,
                     message="the deactivation in every read model")
