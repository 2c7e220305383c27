from contextlib import contextmanager
from itertools import count

import pytest
from sqlalchemy import event

from services.posts.config import Settings
from services.posts.main import create_app
from services.posts.people import service as people
from services.posts.people.schemas import PersonCreate
from tests.service_fixtures import service_fixtures

settings, engine, sessionmaker, session, app, client = service_fixtures(
    "posts", Settings, create_app, jwt_private_key=lambda keys: keys.pem.decode(), admin_password="test-admin-pw")

_seq = count(1)


@pytest.fixture
def make_person(sessionmaker):
    """Factory: a person in the directory (committed to the test's savepoint)."""

    async def make(**fields):
        n = next(_seq)
        data = {"email": f"person{n}@corp.local", "display_name": f"Person {n}", "password": "correct-horse"} | fields
        async with sessionmaker() as s:
            person = await people.create(s, data=PersonCreate(**data), actor=None)
            await s.commit()  # service functions never commit: the caller (here the test) does
            return person

    return make


@pytest.fixture
def auth(keys):
    """Headers with a token for a person (member unless roles are given)."""

    def headers(person, **kwargs):
        return keys.headers(person.id, roles=kwargs.pop("roles", person.roles), **kwargs)

    return headers


@pytest.fixture
def statements(engine):
    """`with statements() as seen:` lists the SQL sent to PostgreSQL meanwhile (query counts, not timings)."""

    @contextmanager
    def recording():
        seen: list[str] = []

        def record(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)

    return recording
