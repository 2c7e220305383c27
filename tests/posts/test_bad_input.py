"""No input makes a 500: control characters, surrogates, nulls, over-long values and forged cursors are 4xx."""

import base64
import json

import pytest

NUL, BELL, SURROGATE = "a\x00b", "a\x07b", "a\ud800b"
JSON = {"content-type": "application/json"}


def cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def raw_json(body: dict) -> dict:
    # json.dumps keeps a lone surrogate as the escape "\ud800", as a hostile client would send it.
    return {"content": json.dumps(body)}


async def assert_422(response, field: str | None = None):
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field:
        assert any(field in e["loc"] for e in response.json()["errors"]), response.json()["errors"]


@pytest.mark.parametrize("text", [NUL, BELL, SURROGATE])
async def test_control_characters_and_surrogates_in_profile_fields_are_422(client, make_person, auth, text):
    me = await make_person()
    for field in ("display_name", "title", "location", "bio", "pronouns", "time_zone"):
        await assert_422(await client.patch("/api/v1/people/me", headers=auth(me) | JSON, **raw_json({field: text})), field)
    await assert_422(await client.patch("/api/v1/people/me", headers=auth(me) | JSON, **raw_json({"skills": [text]})))


async def test_tabs_and_newlines_are_text(client, make_person, auth):
    me = await make_person()
    response = await client.patch("/api/v1/people/me", headers=auth(me), json={"bio": "line one\n\tline two"})
    assert response.status_code == 200 and response.json()["bio"] == "line one\n\tline two"


@pytest.mark.parametrize("text", [NUL, SURROGATE])
async def test_control_characters_in_group_token_and_login_fields_are_422(client, make_person, auth, text):
    me = await make_person()
    await assert_422(await client.post("/api/v1/groups", headers=auth(me) | JSON, **raw_json({"name": text})), "name")
    await assert_422(await client.post("/api/v1/groups", headers=auth(me) | JSON,
                                       **raw_json({"name": "ok", "description": text})), "description")
    await assert_422(await client.post("/auth/tokens", headers=auth(me) | JSON,
                                       **raw_json({"name": text, "scopes": ["posts:read"]})), "name")
    await assert_422(await client.post("/auth/login", headers=JSON, **raw_json({"email": f"{text}@corp.local", "password": "x"})))
    await assert_422(await client.post("/auth/login", headers=JSON, **raw_json({"email": "a@corp.local", "password": text})))


@pytest.mark.parametrize("param", ["q", "department", "location", "skill"])
async def test_control_characters_in_directory_filters_are_422(client, make_person, auth, param):
    me = await make_person()
    await assert_422(await client.get("/api/v1/people", headers=auth(me), params={param: NUL}), param)
    await assert_422(await client.get("/api/v1/groups", headers=auth(me), params={"q": NUL}), "q")


async def test_null_for_a_required_profile_field_is_422_not_500(client, make_person, auth):
    admin, bo = await make_person(roles=["admin"]), await make_person()
    for field in ("official", "leader", "protected", "display_name", "roles", "skills", "email"):
        await assert_422(await client.patch(f"/api/v1/people/{bo.id}", headers=auth(admin), json={field: None}))


async def test_blank_display_names_and_over_long_values_are_422(client, make_person, auth):
    me = await make_person()
    for body in ({"display_name": "   "}, {"skills": ["x" * 101]}, {"skills": ["  "]},
                 {"avatar_url": "https://example.com/" + "a" * 1000}, {"bio": "b" * 2001}):
        await assert_422(await client.patch("/api/v1/people/me", headers=auth(me), json=body))
    fits = await client.patch("/api/v1/people/me", headers=auth(me) | JSON,
                              json={"avatar_url": "https://example.com/" + "a" * 900})
    assert fits.status_code == 200


async def test_blank_group_names_and_null_group_settings_are_422(client, make_person, auth):
    me = await make_person()
    await assert_422(await client.post("/api/v1/groups", headers=auth(me), json={"name": "  "}))
    group = (await client.post("/api/v1/groups", headers=auth(me), json={"name": "Nulls"})).json()
    for field in ("name", "description", "visibility", "admins_only_posting"):
        await assert_422(await client.patch(f"/api/v1/groups/{group['id']}", headers=auth(me), json={field: None}))


@pytest.mark.parametrize("values", [
    [123, "01a0b8f0-0000-7000-8000-000000000000"],  # a number where a name is
    ["Ana", 123], ["Ana", {"a": 1}], ["Ana", ["x"]], ["Ana", None],  # non-string ids
    ["A\u0000na", "01a0b8f0-0000-7000-8000-000000000000"], "not a list", ["only one"],
])
async def test_forged_directory_cursors_are_422(client, make_person, auth, values):
    me = await make_person()
    response = await client.get("/api/v1/people", headers=auth(me), params={"cursor": cursor(values)})
    assert response.status_code == 422 and response.json()["code"] == "invalid-input"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59",
                                    "not a date", 12345])
async def test_forged_date_cursors_are_422(client, make_person, auth, moment):
    me = await make_person()
    forged = cursor([moment, "01a0b8f0-0000-7000-8000-000000000000"])
    response = await client.get("/auth/tokens", headers=auth(me), params={"cursor": forged})
    assert response.status_code == 422 and response.json()["code"] == "invalid-input"


async def test_cursors_that_are_not_base64_json_are_422(client, make_person, auth):
    me = await make_person()
    for bad in ("%%%", "é", base64.urlsafe_b64encode(b"\xff\xfe").decode(), "W1tbW1tbW1tb"):
        response = await client.get("/api/v1/people", headers=auth(me), params={"cursor": bad})
        assert response.status_code == 422, bad


async def test_people_search_matches_percent_and_underscore_literally(client, make_person, auth):
    me = await make_person(display_name="Plain Person")
    await make_person(display_name="100% Sure")
    await make_person(display_name="snake_case fan")
    names = lambda r: {p["display_name"] for p in r.json()["items"]}  # noqa: E731
    assert names(await client.get("/api/v1/people", headers=auth(me), params={"q": "%"})) == {"100% Sure"}
    assert names(await client.get("/api/v1/people", headers=auth(me), params={"q": "_"})) == {"snake_case fan"}
