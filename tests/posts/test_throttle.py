"""The login throttle cannot be bypassed by forwarded headers, and hashing never freezes the loop."""

import asyncio
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from services.posts.auth import passwords
from services.posts.auth import service as auth
from services.posts.auth.models import LoginFailure
from services.posts.main import create_app
from shared.testing import client_for


async def login(client, email, password="correct-horse", **headers):
    return await client.post("/auth/login", json={"email": email, "password": password}, headers=headers)


async def failures(session, **where) -> int:
    column, value = next(iter(where.items()))
    return await session.scalar(select(func.count()).where(getattr(LoginFailure, column) == value))


async def test_an_overlong_forwarded_for_is_counted_and_cannot_unlock_a_throttled_account(client, session,
                                                                                        make_person):
    await make_person(email="zed@corp.local")
    long_header = ", ".join(f"198.51.100.{n}" for n in range(20))  # > 64 characters
    for _ in range(5):
        response = await login(client, "zed@corp.local", "wrong-guess", **{"X-Forwarded-For": long_header})
        assert response.status_code == 401
    assert await failures(session, email="zed@corp.local") == 5
    right = await login(client, "zed@corp.local", **{"X-Forwarded-For": long_header})
    assert right.status_code == 429 and "access_token" not in right.json()


@pytest.fixture
async def strict_client(settings, sessionmaker):
    """The app with a per-address limit of 3 behind a trusted gateway at 127.0.0.1 (the test peer)."""
    app = create_app(settings.model_copy(update={"login_ip_max_failures": 3, "trusted_proxies": "127.0.0.1"}))
    async with client_for(app, sessionmaker) as client:
        yield client


async def test_rotating_the_left_of_forwarded_for_does_not_escape_the_address_limit(strict_client, session):
    for n in range(3):
        spoofed = {"X-Forwarded-For": f"192.0.2.{n}, 198.51.100.7"}
        assert (await login(strict_client, f"guess{n}@corp.local", "x", **spoofed)).status_code == 401
    assert await failures(session, ip="198.51.100.7") == 3
    again = await login(strict_client, "other@corp.local", "x", **{"X-Forwarded-For": "192.0.2.99, 198.51.100.7"})
    assert again.status_code == 429
    elsewhere = await login(strict_client, "other@corp.local", "x", **{"X-Forwarded-For": "198.51.100.8"})
    assert elsewhere.status_code == 401  # another client behind the same gateway is not locked out


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(client, session):
    await login(client, "nobody@corp.local", "x", **{"X-Forwarded-For": "198.51.100.9"})
    assert await failures(session, ip="198.51.100.9") == 0
    assert await failures(session, ip="127.0.0.1") == 1


async def test_an_attempt_that_cannot_be_recorded_is_refused_before_the_password_is_checked(
        sessionmaker, app, make_person, monkeypatch):
    await make_person(email="yan@corp.local")
    checked = []
    real_verify = auth.verify_password_off_loop

    async def spy(*args):
        checked.append(args)
        return await real_verify(*args)

    monkeypatch.setattr(auth, "verify_password_off_loop", spy)
    async with sessionmaker() as s:
        with pytest.raises(DBAPIError):  # an address no column can hold makes the insert fail
            await auth.login(s, issuer=app.state.token_issuer, email="yan@corp.local", password="correct-horse",
                             ip="x" * 500)
        await s.rollback()
    assert checked == []


async def _max_loop_gap(work) -> float:
    """Run `work` while a ticker measures the longest time the event loop did not get back to it."""
    gaps, done = [0.0], asyncio.Event()

    async def ticker():
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0.005)  # the ticker is running before the work starts...
        await work()
        await asyncio.sleep(0.005)  # ...and measures the gap the work left after it
    finally:
        done.set()
        await task
    return max(gaps)


async def test_logins_in_flight_do_not_hold_up_the_event_loop(client, make_person):
    await make_person(email="loop@corp.local")

    async def three_logins():
        for _ in range(3):  # one after another: the test's sessions share one connection
            assert (await login(client, "loop@corp.local")).status_code == 200

    async def one_hash_on_the_loop():  # what each login did before: argon2 on the event loop
        passwords.verify_password(None, "correct-horse")

    blocked = await _max_loop_gap(one_hash_on_the_loop)
    during_logins = await _max_loop_gap(three_logins)
    assert during_logins < blocked / 2, (during_logins, blocked)
