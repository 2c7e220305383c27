from collections import Counter

from sqlalchemy import func, select

from services.posts.graph.models import Follow
from services.posts.people.models import Person
from services.posts.seed import seed_company


async def test_seed_builds_a_company_with_an_org_chart_and_follows(sessionmaker, session, client):
    report = await seed_company(sessionmaker, size=60, progress=False)
    assert report.people == 60
    people = list(await session.scalars(select(Person)))
    assert len(people) == 60
    departments = Counter(p.department for p in people if p.department)
    assert len(departments) == 10 and departments["Engineering"] == max(departments.values())
    by_id = {p.id: p for p in people}
    ceo = next(p for p in people if p.manager_id is None and not p.official)
    for person in people:  # everyone but the CEO and the news account reaches the CEO up the chain
        if person is ceo or person.official:
            continue
        chain, current = 0, person
        while current.manager_id and chain < 10:
            current, chain = by_id[current.manager_id], chain + 1
        assert current is ceo
    assert sum(p.leader for p in people) == 11  # the CEO and ten heads
    assert await session.scalar(select(func.count()).select_from(Follow)) == report.follows > 60
    login = await client.post("/auth/login", json={"email": people[5].email, "password": "hearth-demo"})
    assert login.status_code == 200
