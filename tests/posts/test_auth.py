from datetime import timedelta

from shared.auth import SigningKey


async def login(client, email, password="correct-horse"):
    return await client.post("/auth/login", json={"email": email, "password": password})


async def test_login_returns_token_pair_that_works_on_me(client, make_person):
    person = await make_person(email="ana@corp.local")
    response = await login(client, "ANA@corp.local")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60 and body["refresh_token"]
    me = await client.get("/api/v1/people/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == str(person.id)


async def test_login_with_wrong_password_or_unknown_email_is_the_same_401(client, make_person):
    await make_person(email="bo@corp.local")
    wrong = await login(client, "bo@corp.local", "nope-nope")
    unknown = await login(client, "nobody@corp.local", "nope-nope")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid-credentials"


async def test_jwks_publishes_the_key_that_signs_access_tokens(client, make_person):
    await make_person(email="cy@corp.local")
    token = (await login(client, "cy@corp.local")).json()["access_token"]
    jwks = (await client.get("/.well-known/jwks.json")).json()
    import jwt
    kid = jwt.get_unverified_header(token)["kid"]
    assert [k["kid"] for k in jwks["keys"]] == [kid]
    assert all("d" not in k for k in jwks["keys"])  # never the private part


async def test_refresh_rotates_and_reuse_of_old_token_revokes_the_family(client, make_person):
    await make_person(email="dee@corp.local")
    first = (await login(client, "dee@corp.local")).json()["refresh_token"]
    rotated = await client.post("/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    reuse = await client.post("/auth/refresh", json={"refresh_token": first})
    assert reuse.status_code == 401 and reuse.json()["code"] == "invalid-refresh-token"
    # The theft response ends the legitimate newer token too.
    assert (await client.post("/auth/refresh", json={"refresh_token": second})).status_code == 401


async def test_logout_ends_the_refresh_token(client, make_person):
    await make_person(email="eve@corp.local")
    token = (await login(client, "eve@corp.local")).json()["refresh_token"]
    assert (await client.post("/auth/logout", json={"refresh_token": token})).status_code == 204
    assert (await client.post("/auth/refresh", json={"refresh_token": token})).status_code == 401


async def test_missing_expired_and_forged_tokens_are_401_problems(client, keys, make_person):
    person = await make_person()
    expired = keys.token(person.id, ttl=timedelta(seconds=-60))
    forged = keys.token(person.id, key=SigningKey(SigningKey.generate_pem()))
    cases = {None: "invalid_request", "Bearer " + expired: "invalid_token", "Bearer " + forged: "invalid_token",
             "Bearer not.a.jwt": "invalid_token", "Basic abc": "invalid_request"}
    for header, error in cases.items():
        response = await client.get("/api/v1/people/me", headers={"Authorization": header} if header else {})
        assert response.status_code == 401, header
        assert response.headers["content-type"] == "application/problem+json"
        assert f'error="{error}"' in response.headers["www-authenticate"]


async def test_deactivated_person_cannot_log_in(client, make_person, sessionmaker):
    person = await make_person(email="gone@corp.local")
    async with sessionmaker() as s:
        from services.posts.people.models import Person
        (await s.get(Person, person.id)).active = False
        await s.commit()
    assert (await login(client, "gone@corp.local")).status_code == 401
