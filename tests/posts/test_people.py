from sqlalchemy import func, select

from services.posts.people import service as people
from services.posts.people.models import Person
from shared.testing import outbox_events


async def count_people(session) -> int:
    return await session.scalar(select(func.count()).select_from(Person))


async def test_admin_creates_person_and_people_v1_gets_the_snapshot(client, session, make_person, auth):
    admin = await make_person(roles=["admin"])
    response = await client.post("/api/v1/people", headers=auth(admin), json={
        "email": "New.Hire@corp.local", "display_name": "New Hire", "department": "Sales", "manager_id": str(admin.id)})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "new.hire@corp.local" and body["handle"] == "new.hire" and body["roles"] == ["member"]
    [event] = [e for e in await outbox_events(session, type="hearth.person.created") if e.subject == body["id"]]
    assert event.actor == admin.id and event.source == "posts"
    assert event.payload().person.department == "Sales"
    assert "password_hash" not in event.data["person"]


async def test_member_cannot_create_people(client, session, make_person, auth):
    member = await make_person()
    before = await count_people(session)
    response = await client.post("/api/v1/people", headers=auth(member),
                                 json={"email": "x@corp.local", "display_name": "X"})
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert await count_people(session) == before


async def test_duplicate_email_is_409_and_changes_nothing(client, session, make_person, auth):
    admin = await make_person(roles=["admin"])
    await make_person(email="taken@corp.local")
    before = await count_people(session)
    response = await client.post("/api/v1/people", headers=auth(admin),
                                 json={"email": "TAKEN@corp.local", "display_name": "Again"})
    assert response.status_code == 409 and response.json()["code"] == "email-taken"
    assert await count_people(session) == before


async def test_handles_are_unique_even_for_the_same_local_part(make_person):
    a = await make_person(email="sam@one.local")
    b = await make_person(email="sam@two.local")
    assert a.handle == "sam" and b.handle == "sam2"


async def test_unknown_person_is_404_problem(client, make_person, auth):
    me = await make_person()
    response = await client.get("/api/v1/people/0190a000-0000-7000-8000-000000000000", headers=auth(me))
    assert response.status_code == 404 and response.json()["code"] == "person-not-found"
    bad = await client.get("/api/v1/people/not-a-uuid", headers=auth(me))
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["path", "person_id"]


async def test_ensure_admin_is_idempotent(sessionmaker):
    async with sessionmaker() as s:
        first = await people.ensure_admin(s, email="root@corp.local", password="long-enough", display_name="Root")
        await s.commit()
    async with sessionmaker() as s:
        second = await people.ensure_admin(s, email="root@corp.local", password="long-enough", display_name="Root")
        await s.commit()
    assert first.id == second.id and "admin" in first.roles
