from datetime import timedelta

from cryptography.hazmat.primitives import serialization

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


async def count_failures(session, email: str) -> int:
    from sqlalchemy import func, select

    from services.posts.auth.models import LoginFailure
    return await session.scalar(select(func.count()).where(LoginFailure.email == email))


async def test_sixth_attempt_after_five_failures_is_throttled_even_with_the_right_password(client, session,
                                                                                         make_person):
    await make_person(email="fay@corp.local")
    for _ in range(5):
        assert (await login(client, "fay@corp.local", "wrong-guess")).status_code == 401
    throttled = await login(client, "Fay@corp.local", "correct-horse")
    assert throttled.status_code == 429
    assert throttled.headers["content-type"] == "application/problem+json"
    assert throttled.json()["code"] == "login-throttled"
    assert 0 < int(throttled.headers["retry-after"]) <= 30 * 60
    assert "access_token" not in throttled.json()
    assert await count_failures(session, "fay@corp.local") == 5  # refused attempts are not counted


async def test_failures_outside_the_window_do_not_count_and_other_accounts_are_unaffected(client, session,
                                                                                       make_person):
    from sqlalchemy import update

    from services.posts.auth.models import LoginFailure
    from shared.db import utcnow
    await make_person(email="gus@corp.local")
    await make_person(email="hal@corp.local")
    for _ in range(5):
        await login(client, "gus@corp.local", "wrong-guess")
    assert (await login(client, "hal@corp.local")).status_code == 200
    assert (await login(client, "gus@corp.local")).status_code == 429
    await session.execute(update(LoginFailure).where(LoginFailure.email == "gus@corp.local")
                          .values(failed_at=utcnow() - timedelta(minutes=31)))
    await session.commit()
    assert (await login(client, "gus@corp.local")).status_code == 200


async def test_unknown_accounts_are_throttled_like_real_ones(client):
    for _ in range(5):
        assert (await login(client, "ghost@corp.local", "guess")).status_code == 401
    assert (await login(client, "ghost@corp.local", "guess")).status_code == 429


async def test_success_does_not_reset_counted_failures(client, make_person):
    await make_person(email="ivy@corp.local")
    for _ in range(4):
        await login(client, "ivy@corp.local", "wrong-guess")
    assert (await login(client, "ivy@corp.local")).status_code == 200
    assert (await login(client, "ivy@corp.local", "wrong-guess")).status_code == 401
    assert (await login(client, "ivy@corp.local")).status_code == 429


async def test_login_bad_input_is_a_problem_and_counts_no_failure(client, session):
    for body in ({"email": "x@corp.local"}, {"email": "x@corp.local", "password": ""},
                 {"email": "x@corp.local", "password": "p", "extra": 1}):
        response = await client.post("/auth/login", json=body)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert await count_failures(session, "x@corp.local") == 0


async def test_jwks_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_current_key(settings, sessionmaker,
                                                                                            keys, make_person):
    import jwt

    from services.posts.main import create_app
    from shared.testing import client_for
    person = await make_person(email="jo@corp.local")
    old_token = keys.token(person.id)  # signed by the key being rotated out
    new_key = SigningKey(SigningKey.generate_pem())
    old_public = keys.key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    rotated = create_app(settings.model_copy(update={"jwt_private_key": new_key_pem(new_key),
                                                     "jwt_previous_keys": old_public}))
    async with client_for(rotated, sessionmaker) as client:
        jwks = (await client.get("/.well-known/jwks.json")).json()
        assert [k["kid"] for k in jwks["keys"]] == [new_key.kid, keys.key.kid]
        me = await client.get("/api/v1/people/me", headers={"Authorization": f"Bearer {old_token}"})
        assert me.status_code == 200 and me.json()["id"] == str(person.id)
        fresh = (await login(client, "jo@corp.local")).json()["access_token"]
        assert jwt.get_unverified_header(fresh)["kid"] == new_key.kid
        stranger = keys.token(person.id, key=SigningKey(SigningKey.generate_pem()))
        assert (await client.get("/api/v1/people/me",
                                 headers={"Authorization": f"Bearer {stranger}"})).status_code == 401


def new_key_pem(key: SigningKey) -> str:
    return key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()


async def test_previous_keys_file_with_several_keys_is_published(settings, tmp_path):
    from services.posts.auth.service import TokenIssuer, load_signing_key
    first, second = SigningKey(SigningKey.generate_pem()), SigningKey(SigningKey.generate_pem())
    bundle = tmp_path / "previous.pem"
    bundle.write_text(new_key_pem(first) + first.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode() + new_key_pem(second))
    rotated = settings.model_copy(update={"jwt_previous_keys_file": str(bundle)})
    issuer = TokenIssuer(key=load_signing_key(rotated), settings=rotated)
    kids = [k["kid"] for k in issuer.jwks()["keys"]]
    assert kids[0] == issuer.key.kid and kids[1:] == [first.kid, second.kid]
    assert all("d" not in k for k in issuer.jwks()["keys"])
