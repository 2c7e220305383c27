"""SCIM 2.0 provisioning: the request sequences Okta and Entra ID really send, filters, discovery, errors."""

from itertools import count
from uuid import UUID

import pytest
from sqlalchemy import func, select

from services.posts.groups import service as groups_service
from services.posts.groups.models import Group
from services.posts.groups.schemas import GroupCreate
from services.posts.people.models import Person
from shared.testing import outbox_events

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"

_seq = count(1)


@pytest.fixture
def scim(settings):
    return {"Authorization": f"Bearer {settings.scim_token}", "Content-Type": SCIM_JSON}


def okta_user(email: str, **extra) -> dict:
    """The body Okta POSTs to /Users."""
    return {"schemas": [USER], "userName": email, "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"primary": True, "value": email, "type": "work"}], "displayName": "Ada Lovelace",
            "locale": "en-US", "externalId": f"00u{next(_seq)}okta", "groups": [], "password": "okta-initial-pw",
            "active": True} | extra


def entra_user(email: str, **extra) -> dict:
    """The body Entra ID POSTs to /Users (enterprise extension included)."""
    return {"schemas": [USER, ENTERPRISE], "externalId": f"entra-{next(_seq)}", "userName": email, "active": True,
            "displayName": "Grace Hopper", "title": "Rear Admiral",
            "emails": [{"primary": True, "type": "work", "value": email}],
            "name": {"formatted": "Grace Hopper", "familyName": "Hopper", "givenName": "Grace"},
            "addresses": [{"type": "work", "locality": "Arlington", "country": "us", "primary": False}],
            "preferredLanguage": "en-US", ENTERPRISE: {"department": "Navy", "employeeNumber": "1906"}} | extra


def patch(*operations) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def count_people(session) -> int:
    return await session.scalar(select(func.count()).select_from(Person))


async def events_for(session, user_id: str, type: str | None = None):
    return [e for e in await outbox_events(session, type=type) if e.subject == user_id]


def assert_scim_error(response, status: int, scim_type: str | None = None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    body = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    assert body.get("scimType") == scim_type, body


async def create(client, scim, body) -> dict:
    response = await client.post("/scim/v2/Users", headers=scim, json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --- Users: the provisioning sequences of the two big identity providers ---

async def test_okta_provisioning_sequence(client, session, scim, make_person):
    manager = await make_person(display_name="The Boss")
    # Okta looks the user up first, then creates it.
    lookup = await client.get("/scim/v2/Users", headers=scim,
                              params={"filter": 'userName eq "ada@corp.local"', "startIndex": 1, "count": 100})
    assert lookup.status_code == 200 and lookup.json()["totalResults"] == 0 and lookup.json()["Resources"] == []

    response = await client.post("/scim/v2/Users", headers=scim, json=okta_user("Ada@Corp.local"))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    user = response.json()
    # userName reads back as given (unique case-insensitively); the sign-in email is stored lower-cased.
    assert user["userName"] == "Ada@Corp.local" and user["displayName"] == "Ada Lovelace" and user["active"] is True
    assert "password" not in user
    meta = user["meta"]
    assert meta["resourceType"] == "User" and meta["created"] and meta["lastModified"]
    assert meta["location"] == f"http://test/scim/v2/Users/{user['id']}" == response.headers["location"]
    assert meta["version"].startswith('W/"') and response.headers["etag"] == meta["version"]
    [created] = await events_for(session, user["id"], "hearth.person.created")
    assert created.payload().person.email == "ada@corp.local" and "password" not in created.data["person"]

    # The password Okta set is the one /auth/login accepts.
    login = await client.post("/auth/login", json={"email": "ada@corp.local", "password": "okta-initial-pw"})
    assert login.status_code == 200, login.text

    # Profile push: department and manager through the enterprise extension paths.
    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim, json=patch(
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Engineering"},
        {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": str(manager.id)}}))
    assert response.status_code == 200, response.text
    enterprise = response.json()[ENTERPRISE]
    assert enterprise["department"] == "Engineering" and enterprise["manager"]["value"] == str(manager.id)
    assert enterprise["manager"]["$ref"].endswith(f"/scim/v2/Users/{manager.id}")
    [updated] = await events_for(session, user["id"], "hearth.person.updated")
    assert updated.data["changed"] == ["department", "manager_id"]
    assert updated.payload().person.department == "Engineering"

    # Deactivation: Okta's PATCH with a value object and no path.
    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim,
                                  json=patch({"op": "replace", "value": {"active": False}}))
    assert response.status_code == 200 and response.json()["active"] is False
    [deactivated] = await events_for(session, user["id"], "hearth.person.deactivated")
    assert deactivated.payload().person.active is False and deactivated.payload().person.department == "Engineering"
    refused = await client.post("/auth/login", json={"email": "ada@corp.local", "password": "okta-initial-pw"})
    assert refused.status_code == 401

    # Reactivation.
    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim,
                                  json=patch({"op": "replace", "value": {"active": True}}))
    assert response.status_code == 200 and response.json()["active"] is True
    assert len(await events_for(session, user["id"], "hearth.person.reactivated")) == 1
    assert (await client.post("/auth/login", json={"email": "ada@corp.local",
                                                   "password": "okta-initial-pw"})).status_code == 200

    # Delete deactivates and hides the User from SCIM (RFC 7644 §3.6); a new POST brings the person back.
    response = await client.delete(f"/scim/v2/Users/{user['id']}", headers=scim)
    assert response.status_code == 204 and response.content == b""
    assert len(await events_for(session, user["id"], "hearth.person.deactivated")) == 2
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        gone = await client.request(method, f"/scim/v2/Users/{user['id']}", headers=scim,
                                    json=None if method in ("GET", "DELETE") else patch())
        assert_scim_error(gone, 404)
    listed = await client.get("/scim/v2/Users", headers=scim, params={"filter": 'userName eq "Ada@Corp.local"'})
    assert listed.json()["totalResults"] == 0
    back = await client.post("/scim/v2/Users", headers=scim, json=okta_user("ada@corp.local",
                                                                            externalId=user["externalId"]))
    assert back.status_code == 201 and back.json()["id"] == user["id"] and back.json()["active"] is True
    assert len(await events_for(session, user["id"], "hearth.person.reactivated")) == 2
    assert await session.get(Person, UUID(user["id"])) is not None


async def test_entra_provisioning_sequence(client, session, scim, make_person):
    manager = await make_person()
    # Entra queries by userName, then by externalId... then creates.
    for query in ('userName eq "grace@corp.local"', 'externalId eq "nobody"'):
        found = await client.get("/scim/v2/Users", headers=scim, params={"filter": query})
        assert found.json()["totalResults"] == 0
    user = await create(client, scim, entra_user("grace@corp.local"))
    assert user["title"] == "Rear Admiral" and user[ENTERPRISE]["department"] == "Navy"
    assert [a for a in user["addresses"] if a.get("type") == "work"][0]["locality"] == "Arlington"
    person = await session.get(Person, UUID(user["id"]))
    assert (person.location, person.country, person.employee_number, person.external_id) == (
        "Arlington", "US", "1906", user["externalId"])

    # Entra: capitalised ops, string booleans, manager as a bare id, several operations in one request.
    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim, json=patch(
        {"op": "Replace", "path": "title", "value": "Commodore"},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Computing"},
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": str(manager.id)},
        {"op": "Replace", "path": 'addresses[type eq "work"].locality', "value": "Washington"}))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "Commodore" and body[ENTERPRISE]["department"] == "Computing"
    assert body[ENTERPRISE]["manager"]["value"] == str(manager.id) and body["addresses"][0]["locality"] == "Washington"
    [updated] = await events_for(session, user["id"], "hearth.person.updated")
    assert updated.data["changed"] == ["department", "location", "manager_id", "title"]

    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim,
                                  json=patch({"op": "Replace", "path": "active", "value": "False"}))
    assert response.status_code == 200 and response.json()["active"] is False
    assert len(await events_for(session, user["id"], "hearth.person.deactivated")) == 1

    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim,
                                  json=patch({"op": "Replace", "path": "active", "value": "True"}))
    assert response.json()["active"] is True
    assert len(await events_for(session, user["id"], "hearth.person.reactivated")) == 1

    # Entra clears the manager with a remove.
    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim,
                                  json=patch({"op": "Remove", "path": f"{ENTERPRISE}:manager"}))
    assert response.status_code == 200 and "manager" not in response.json()[ENTERPRISE]
    assert (await session.get(Person, person.id)).manager_id is None

    response = await client.delete(f"/scim/v2/Users/{user['id']}", headers=scim)
    assert response.status_code == 204
    assert (await client.get(f"/scim/v2/Users/{user['id']}", headers=scim)).status_code == 404
    assert await session.scalar(select(Person.active).where(Person.id == person.id)) is False  # kept, deactivated


async def test_deactivation_stops_login_and_refresh_at_once(client, scim):
    user = await create(client, scim, okta_user("leaver@corp.local"))
    tokens = (await client.post("/auth/login", json={"email": "leaver@corp.local",
                                                    "password": "okta-initial-pw"})).json()
    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim,
                                  json=patch({"op": "replace", "path": "active", "value": False}))
    assert response.status_code == 200
    assert (await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).status_code == 401
    assert (await client.post("/auth/login", json={"email": "leaver@corp.local",
                                                   "password": "okta-initial-pw"})).status_code == 401


async def test_password_patch_changes_the_login_password(client, scim):
    user = await create(client, scim, okta_user("pw@corp.local"))
    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim,
                                  json=patch({"op": "replace", "path": "password", "value": "brand-new-secret"}))
    assert response.status_code == 200 and "password" not in response.json()
    assert (await client.post("/auth/login", json={"email": "pw@corp.local",
                                                   "password": "brand-new-secret"})).status_code == 200
    assert (await client.post("/auth/login", json={"email": "pw@corp.local",
                                                   "password": "okta-initial-pw"})).status_code == 401


async def test_created_inactive_user_cannot_sign_in(client, session, scim):
    user = await create(client, scim, okta_user("dormant@corp.local", active=False))
    assert user["active"] is False
    assert [e.type for e in await events_for(session, user["id"])] == ["hearth.person.created",
                                                                      "hearth.person.deactivated"]
    assert (await client.post("/auth/login", json={"email": "dormant@corp.local",
                                                   "password": "okta-initial-pw"})).status_code == 401


async def test_put_replaces_the_provisioned_profile(client, session, scim):
    user = await create(client, scim, entra_user("put@corp.local"))
    replacement = {"schemas": [USER, ENTERPRISE], "userName": "Put.Renamed@corp.local", "displayName": "Renamed",
                   "externalId": user["externalId"], "active": True, ENTERPRISE: {"department": "Ops"}}
    response = await client.put(f"/scim/v2/Users/{user['id']}", headers=scim, json=replacement)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["userName"] == "Put.Renamed@corp.local" and body["displayName"] == "Renamed"
    assert "title" not in body and "addresses" not in body  # replaced means: what is left out is cleared
    assert body[ENTERPRISE] == {"department": "Ops"}
    [updated] = await events_for(session, user["id"], "hearth.person.updated")
    assert set(updated.data["changed"]) == {"email", "display_name", "title", "department", "employee_number",
                                            "location", "country"}
    # PUT with the same body again changes nothing and publishes nothing.
    again = await client.put(f"/scim/v2/Users/{user['id']}", headers=scim, json=replacement)
    assert again.status_code == 200 and len(await events_for(session, user["id"], "hearth.person.updated")) == 1


async def test_if_match_with_a_stale_version_is_412_and_changes_nothing(client, session, scim):
    user = await create(client, scim, okta_user("etag@corp.local"))
    response = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim | {"If-Match": 'W/"1"'},
                                  json=patch({"op": "replace", "path": "title", "value": "Nope"}))
    assert_scim_error(response, 412)
    current = await client.patch(f"/scim/v2/Users/{user['id']}", headers=scim | {"If-Match": user["meta"]["version"]},
                                 json=patch({"op": "replace", "path": "title", "value": "Yes"}))
    assert current.status_code == 200 and current.json()["title"] == "Yes"


# --- Filters and pagination ---

async def search(client, scim, query: str, **params) -> dict:
    response = await client.get("/scim/v2/Users", headers=scim, params={"filter": query} | params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_filters_okta_and_entra_use(client, scim, make_person):
    a = await create(client, scim, entra_user("filter.alpha@corp.local", displayName="Filter Alpha",
                                               externalId="ext-alpha"))
    b = await create(client, scim, okta_user("filter.beta@corp.local", displayName="Filter Beta", title=None))
    await client.patch(f"/scim/v2/Users/{b['id']}", headers=scim, json=patch({"op": "replace", "path": "active",
                                                                              "value": False}))

    def ids(body):
        return {r["id"] for r in body["Resources"]}

    assert ids(await search(client, scim, 'userName eq "FILTER.ALPHA@corp.local"')) == {a["id"]}
    assert ids(await search(client, scim, 'externalId eq "ext-alpha"')) == {a["id"]}
    assert ids(await search(client, scim, 'externalId eq "EXT-ALPHA"')) == set()  # externalId is caseExact
    assert ids(await search(client, scim, 'emails.value eq "filter.beta@corp.local"')) == {b["id"]}
    assert ids(await search(client, scim, 'emails[type eq "work" and value eq "filter.beta@corp.local"]')) == {b["id"]}
    assert ids(await search(client, scim, 'displayName sw "filter" and active eq true')) == {a["id"]}
    assert ids(await search(client, scim, 'displayName co "ter Be"')) == {b["id"]}
    assert ids(await search(client, scim, 'displayName sw "Filter" and title pr')) == {a["id"]}
    assert ids(await search(client, scim, 'userName eq "filter.alpha@corp.local" or externalId eq "nope" '
                                          f'or id eq "{b["id"]}"')) == {a["id"], b["id"]}
    department = f'{ENTERPRISE}:department eq "navy" and displayName sw "Filter"'
    assert ids(await search(client, scim, department)) == {a["id"]}
    assert ids(await search(client, scim, 'displayName sw "Filter" and not (active eq true)')) == {b["id"]}
    assert ids(await search(client, scim, 'id eq "not-a-uuid"')) == set()
    assert ids(await search(client, scim, 'displayName co "100%"')) == set()  # LIKE wildcards are literal


async def test_pagination_is_one_based_with_totals(client, scim):
    created = [await create(client, scim, okta_user(f"page{n}@corp.local", displayName=f"Paged {n}"))
               for n in range(5)]
    query = 'displayName sw "Paged "'
    first = await search(client, scim, query, startIndex=1, count=2)
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (5, 1, 2)
    last = await search(client, scim, query, startIndex=5, count=2)
    assert (last["startIndex"], last["itemsPerPage"]) == (5, 1)
    seen = [r["id"] for start in (1, 3, 5) for r in (await search(client, scim, query, startIndex=start,
                                                                    count=2))["Resources"]]
    assert seen == [u["id"] for u in created]  # creation order, nothing skipped or repeated
    only_total = await search(client, scim, query, count=0)
    assert only_total["totalResults"] == 5 and only_total.get("Resources", []) == []
    clamped = await search(client, scim, query, startIndex=0, count=1)
    assert clamped["startIndex"] == 1 and clamped["itemsPerPage"] == 1


async def test_attributes_parameter_trims_the_response(client, scim):
    user = await create(client, scim, okta_user("trim@corp.local"))
    response = await client.get(f"/scim/v2/Users/{user['id']}", headers=scim, params={"attributes": "userName"})
    assert set(response.json()) == {"schemas", "id", "userName"}


# --- Discovery ---

async def test_discovery_endpoints(client, scim):
    config = (await client.get("/scim/v2/ServiceProviderConfig", headers=scim)).json()
    assert config["patch"]["supported"] is True and config["filter"] == {"supported": True, "maxResults": 200}
    assert config["bulk"]["supported"] is False and config["authenticationSchemes"][0]["type"] == "oauthbearertoken"

    schemas = (await client.get("/scim/v2/Schemas", headers=scim)).json()
    assert {s["id"] for s in schemas["Resources"]} == {USER, ENTERPRISE, "urn:ietf:params:scim:schemas:core:2.0:Group"}
    assert schemas["totalResults"] == 3
    user_schema = (await client.get(f"/scim/v2/Schemas/{USER}", headers=scim)).json()
    assert "userName" in {a["name"] for a in user_schema["attributes"]}
    assert user_schema["meta"]["location"].endswith(f"/scim/v2/Schemas/{USER}")

    types = (await client.get("/scim/v2/ResourceTypes", headers=scim)).json()
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    user_type = (await client.get("/scim/v2/ResourceTypes/User", headers=scim)).json()
    assert user_type["endpoint"] == "/Users" and user_type["schemaExtensions"] == [{"schema": ENTERPRISE,
                                                                                     "required": False}]
    assert_scim_error(await client.get("/scim/v2/Schemas/urn:nope", headers=scim), 404)
    assert_scim_error(await client.get("/scim/v2/ResourceTypes/Pet", headers=scim), 404)


# --- Errors: SCIM bodies, and nothing changed ---

async def test_bad_or_missing_token_is_401(client, session, scim):
    before = await count_people(session)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic Y2hhbmdlLW1l"}):
        response = await client.post("/scim/v2/Users", headers=headers, json=okta_user("intruder@corp.local"))
        assert_scim_error(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert_scim_error(await client.get("/scim/v2/ServiceProviderConfig"), 401)
    assert await count_people(session) == before


async def test_unknown_user_is_404(client, scim):
    for user_id in ("0190a000-0000-7000-8000-000000000000", "not-a-uuid"):
        assert_scim_error(await client.get(f"/scim/v2/Users/{user_id}", headers=scim), 404)
        assert_scim_error(await client.patch(f"/scim/v2/Users/{user_id}", headers=scim,
                                             json=patch({"op": "replace", "path": "active", "value": False})), 404)
        assert_scim_error(await client.delete(f"/scim/v2/Users/{user_id}", headers=scim), 404)


async def test_bad_filter_is_400_invalid_filter(client, scim):
    for query in ('userName eq', 'userName xx "a"', 'bogus eq "a"', 'active gt true', 'password eq "x"',
                  'userName eq "a" and (', 'phoneNumbers.value eq "1"'):
        response = await client.get("/scim/v2/Users", headers=scim, params={"filter": query})
        assert_scim_error(response, 400, "invalidFilter")


async def test_duplicate_username_is_409_uniqueness_and_changes_nothing(client, session, scim):
    first = await create(client, scim, okta_user("dup@corp.local"))
    before, events = await count_people(session), len(await outbox_events(session))
    assert_scim_error(await client.post("/scim/v2/Users", headers=scim, json=okta_user("DUP@corp.local")), 409,
                      "uniqueness")
    assert_scim_error(await client.post("/scim/v2/Users", headers=scim, json=okta_user(
        "other@corp.local", externalId=first["externalId"])), 409, "uniqueness")
    other = await create(client, scim, okta_user("other@corp.local"))
    assert_scim_error(await client.patch(f"/scim/v2/Users/{other['id']}", headers=scim, json=patch(
        {"op": "replace", "path": "title", "value": "Changed"},
        {"op": "replace", "path": "userName", "value": "dup@corp.local"})), 409, "uniqueness")
    assert await count_people(session) == before + 1
    assert len(await outbox_events(session)) == events + 1  # only `other` was created
    assert (await client.get(f"/scim/v2/Users/{other['id']}", headers=scim)).json().get("title") is None


async def test_malformed_bodies_are_400_and_change_nothing(client, session, scim):
    user = await create(client, scim, okta_user("solid@corp.local"))
    before, events = await count_people(session), len(await outbox_events(session))
    url = f"/scim/v2/Users/{user['id']}"
    nobody = "0190a000-0000-7000-8000-000000000000"
    cases = [
        ("POST", "/scim/v2/Users", {"content": b"{not json"}, "invalidSyntax"),
        ("POST", "/scim/v2/Users", {"json": [1, 2]}, "invalidSyntax"),
        ("POST", "/scim/v2/Users", {"json": {"schemas": [USER], "displayName": "No userName"}}, "invalidValue"),
        ("POST", "/scim/v2/Users", {"json": okta_user("not-an-email")}, "invalidValue"),
        ("POST", "/scim/v2/Users", {"json": okta_user("short@corp.local", password="short")}, "invalidValue"),
        ("POST", "/scim/v2/Users", {"json": entra_user("ghost.boss@corp.local",
                                                      **{ENTERPRISE: {"manager": {"value": nobody}}})}, "invalidValue"),
        ("PATCH", url, {"json": {"Operations": "nope"}}, "invalidValue"),
        ("PATCH", url, {"json": patch({"op": "explode", "path": "title", "value": "x"})}, "invalidValue"),
        ("PATCH", url, {"json": patch({"op": "replace", "path": "id", "value": "mine"})}, "mutability"),
        ("PATCH", url, {"json": patch({"op": "replace", "path": "title[[", "value": "x"})}, "invalidPath"),
        ("PATCH", url, {"json": patch({"op": "remove"})}, "noTarget"),
        ("PATCH", url, {"json": patch(  # one request is atomic: the valid first operation is undone too
            {"op": "replace", "path": "title", "value": "Half done"},
            {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": user["id"]})}, "invalidValue"),
        ("PUT", url, {"json": {"schemas": [USER], "displayName": "No userName"}}, "invalidValue"),
    ]
    for method, path, body, scim_type in cases:
        assert_scim_error(await client.request(method, path, headers=scim, **body), 400, scim_type)
    assert await count_people(session) == before and len(await outbox_events(session)) == events
    assert "title" not in (await client.get(url, headers=scim)).json()


# --- Groups ---

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def test_group_provisioning_okta_and_entra_shapes(client, session, scim, make_person):
    ada, bob, cy = await make_person(), await make_person(), await make_person()
    response = await client.post("/scim/v2/Groups", headers=scim, json={
        "schemas": [GROUP], "displayName": "SCIM Engineering", "externalId": "okta-g1",
        "members": [{"value": str(ada.id)}, {"value": str(bob.id)}]})
    assert response.status_code == 201, response.text
    group = response.json()
    assert group["displayName"] == "SCIM Engineering" and group["externalId"] == "okta-g1"
    assert {m["value"] for m in group["members"]} == {str(ada.id), str(bob.id)}
    assert response.headers["location"] == group["meta"]["location"] == f"http://test/scim/v2/Groups/{group['id']}"
    stored = await session.get(Group, UUID(group["id"]))
    assert (stored.visibility, stored.official, stored.provisioned) == ("private", False, True)
    [created] = [e for e in await outbox_events(session, type="hearth.group.created") if e.subject == group["id"]]
    added = [e for e in await outbox_events(session, type="hearth.group.member_added") if e.subject == group["id"]]
    assert {e.data["via"] for e in added} == {"provisioned"} and len(added) == 2

    url = f"/scim/v2/Groups/{group['id']}"
    # Okta: rename with a value object (carrying the id), remove a member by a filtered path.
    response = await client.patch(url, headers=scim, json=patch(
        {"op": "replace", "value": {"id": group["id"], "displayName": "SCIM Eng"}},
        {"op": "remove", "path": f'members[value eq "{bob.id}"]'}))
    assert response.status_code == 200, response.text
    assert response.json()["displayName"] == "SCIM Eng"
    assert [m["value"] for m in response.json()["members"]] == [str(ada.id)]
    # Entra: add and remove with a members path and value lists.
    response = await client.patch(url, headers=scim, json=patch(
        {"op": "Add", "path": "members", "value": [{"value": str(cy.id)}]},
        {"op": "Remove", "path": "members", "value": [{"value": str(ada.id)}]}))
    assert [m["value"] for m in response.json()["members"]] == [str(cy.id)]
    removed = [e for e in await outbox_events(session, type="hearth.group.member_removed") if e.subject == group["id"]]
    assert {e.data["reason"] for e in removed} == {"deprovisioned"} and len(removed) == 2

    # Entra checks membership with a filter, without the member list.
    found = await client.get("/scim/v2/Groups", headers=scim, params={
        "filter": f'id eq "{group["id"]}" and members[value eq "{cy.id}"]', "excludedAttributes": "members"})
    assert found.json()["totalResults"] == 1 and "members" not in found.json()["Resources"][0]
    by_name = await client.get("/scim/v2/Groups", headers=scim, params={"filter": 'displayName eq "scim eng"'})
    assert [g["id"] for g in by_name.json()["Resources"]] == [group["id"]]

    # PUT replaces the member list.
    response = await client.put(url, headers=scim, json={"schemas": [GROUP], "displayName": "SCIM Eng",
                                                        "externalId": "okta-g1",
                                                        "members": [{"value": str(ada.id)}, {"value": str(bob.id)}]})
    assert {m["value"] for m in response.json()["members"]} == {str(ada.id), str(bob.id)}

    # DELETE archives: gone for SCIM, kept in Hearth, externalId free again.
    assert (await client.delete(url, headers=scim)).status_code == 204
    assert_scim_error(await client.get(url, headers=scim), 404)
    await session.refresh(stored)
    assert stored.archived is True and stored.external_id is None
    again = await client.post("/scim/v2/Groups", headers=scim, json={"schemas": [GROUP], "displayName": "SCIM Eng",
                                                                     "externalId": "okta-g1"})
    assert again.status_code == 201


async def test_groups_people_made_are_invisible_to_scim(client, session, scim, make_person):
    owner = await make_person()
    mine = await groups_service.create(session, data=GroupCreate(name="Hand made"), actor_id=owner.id)
    assert_scim_error(await client.get(f"/scim/v2/Groups/{mine.id}", headers=scim), 404)
    listing = await client.get("/scim/v2/Groups", headers=scim, params={"filter": 'displayName eq "Hand made"'})
    assert listing.json()["totalResults"] == 0


async def test_group_errors_change_nothing(client, session, scim, make_person):
    ada = await make_person()
    response = await client.post("/scim/v2/Groups", headers=scim, json={
        "schemas": [GROUP], "displayName": "Errors", "externalId": "err-1", "members": [{"value": str(ada.id)}]})
    group = response.json()
    events = len(await outbox_events(session))
    url = f"/scim/v2/Groups/{group['id']}"
    assert_scim_error(await client.post("/scim/v2/Groups", headers=scim, json={
        "schemas": [GROUP], "displayName": "Again", "externalId": "err-1"}), 409, "uniqueness")
    assert_scim_error(await client.post("/scim/v2/Groups", headers=scim, json={
        "schemas": [GROUP], "displayName": "Ghosts", "members": [{"value": "0190a000-0000-7000-8000-000000000000"}]}),
        400, "invalidValue")
    assert_scim_error(await client.post("/scim/v2/Groups", headers=scim, json={"schemas": [GROUP]}), 400,
                      "invalidValue")
    assert_scim_error(await client.patch(url, headers=scim, json=patch(
        {"op": "remove", "path": f'members[value eq "{ada.id}"]'},
        {"op": "add", "path": "members", "value": [{"value": "not-a-user"}]})), 400, "invalidValue")
    assert_scim_error(await client.get("/scim/v2/Groups", headers=scim, params={"filter": "members co \"x\""}), 400,
                      "invalidFilter")
    assert_scim_error(await client.get("/scim/v2/Groups/0190a000-0000-7000-8000-000000000000", headers=scim), 404)
    assert len(await outbox_events(session)) == events
    assert [m["value"] for m in (await client.get(url, headers=scim)).json()["members"]] == [str(ada.id)]


async def test_group_put_sends_the_same_statements_and_one_notify_whatever_the_member_count(
        client, session, scim, make_person, statements):
    ids = [str((await make_person()).id) for _ in range(26)]
    group = await client.post("/scim/v2/Groups", headers=scim, json={
        "schemas": [GROUP], "displayName": "Big", "members": [{"value": v} for v in ids[:2]]})
    url = f"/scim/v2/Groups/{group.json()['id']}"
    sent = []
    for members in (ids[2:4], ids[4:26]):  # 2 in and 2 out, then 22 in and 2 out
        body = {"schemas": [GROUP], "displayName": "Big", "members": [{"value": v} for v in members]}
        with statements() as seen:
            response = await client.put(url, headers=scim, json=body)
        assert response.status_code == 200 and {m["value"] for m in response.json()["members"]} == set(members)
        assert sum(s.lstrip().upper().startswith("NOTIFY") for s in seen) == 1  # one wake-up for all the events
        sent.append(len(seen))
    assert sent[0] == sent[1]  # no statement per member
    subject = group.json()["id"]
    assert len([e for e in await outbox_events(session, type="hearth.group.member_added") if e.subject == subject]) \
        == 2 + 2 + 22
    assert len([e for e in await outbox_events(session, type="hearth.group.member_removed") if e.subject == subject]) \
        == 2 + 2


async def test_a_group_put_that_fails_after_writing_changes_nothing(client, session, scim, make_person, monkeypatch):
    from services.posts.scim.errors import ScimInvalidValue
    ada, bob = await make_person(), await make_person()
    group = (await client.post("/scim/v2/Groups", headers=scim, json={
        "schemas": [GROUP], "displayName": "Before", "members": [{"value": str(ada.id)}]})).json()
    events = len(await outbox_events(session))
    written = groups_service.set_provisioned_members

    async def fail_after_writing(session, **kwargs):
        await written(session, **kwargs)  # the name and the members are written, then the request fails
        raise ScimInvalidValue("failed after the writes")

    monkeypatch.setattr(groups_service, "set_provisioned_members", fail_after_writing)
    url = f"/scim/v2/Groups/{group['id']}"
    assert_scim_error(await client.put(url, headers=scim, json={
        "schemas": [GROUP], "displayName": "After", "members": [{"value": str(bob.id)}]}), 400, "invalidValue")
    monkeypatch.undo()
    stored = (await client.get(url, headers=scim)).json()
    assert stored["displayName"] == "Before" and [m["value"] for m in stored["members"]] == [str(ada.id)]
    assert len(await outbox_events(session)) == events


async def test_a_user_put_that_fails_after_reactivating_changes_nothing(client, session, scim):
    boss = (await client.post("/scim/v2/Users", headers=scim, json=okta_user("boss@corp.local"))).json()
    report = (await client.post("/scim/v2/Users", headers=scim, json=entra_user(
        "report@corp.local", **{ENTERPRISE: {"manager": {"value": boss["id"]}}}))).json()
    url = f"/scim/v2/Users/{boss['id']}"
    assert (await client.patch(url, headers=scim, json=patch({"op": "replace", "path": "active", "value": False}))
            ).status_code == 200
    events = len(await outbox_events(session))
    # Reactivation is written first; the manager cycle is found afterwards, when the profile is updated.
    cycle = okta_user("boss@corp.local", externalId=boss["externalId"], active=True, displayName="Boss",
                      schemas=[USER, ENTERPRISE], **{ENTERPRISE: {"manager": {"value": report["id"]}}})
    response = await client.put(url, headers=scim, json=cycle)
    assert 400 <= response.status_code < 500, response.text
    person = await session.get(Person, UUID(boss["id"]))
    await session.refresh(person)
    assert person.active is False and person.display_name == "Ada Lovelace" and person.manager_id is None
    assert len(await outbox_events(session)) == events


async def test_a_body_that_is_not_utf8_is_a_scim_error_on_every_write(client, settings):
    headers = {"Authorization": f"Bearer {settings.scim_token}", "Content-Type": "application/scim+json"}
    for method, path in (("PUT", "/scim/v2/Users/00000000-0000-0000-0000-000000000001"),
                         ("PATCH", "/scim/v2/Users/00000000-0000-0000-0000-000000000001"),
                         ("PUT", "/scim/v2/Groups/00000000-0000-0000-0000-000000000001"),
                         ("PATCH", "/scim/v2/Groups/00000000-0000-0000-0000-000000000001")):
        response = await client.request(method, path, headers=headers, content=b'{"userName": "\xff\xfe"}')
        assert response.status_code == 400, (method, path, response.text)
        assert response.headers["content-type"].startswith("application/scim+json")
        assert response.json()["scimType"] == "invalidSyntax"
