from collections import Counter

from sqlalchemy import func, select

from services.posts.content.models import Comment, Post, Reaction
from services.posts.graph.models import Follow
from services.posts.groups.models import Group
from services.posts.people.models import Person
from services.posts.seed import free_domain, seed_company


async def test_seed_builds_a_company_with_an_org_chart_and_follows(sessionmaker, session, client):
    report = await seed_company(sessionmaker, size=60, progress=False, posts_per_person=0)
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


async def test_seed_adds_groups_and_content_of_every_kind(sessionmaker, session):
    report = await seed_company(sessionmaker, size=40, progress=False, posts_per_person=1.0)
    assert report.groups == 14 and report.posts == 41  # one per person and the announcement
    kinds = Counter(await session.scalars(select(Post.kind)))
    assert kinds["announcement"] == 1 and kinds["update"] > kinds["poll"] and sum(kinds.values()) == 41
    assert await session.scalar(select(func.count()).select_from(Group)) >= 14
    assert await session.scalar(select(func.count()).select_from(Comment)) == report.comments
    assert await session.scalar(select(func.count()).select_from(Reaction)) == report.reactions > 0


async def test_a_second_seed_uses_a_domain_of_its_own(sessionmaker, session):
    assert await free_domain(session) == "acme.example.com"
    await seed_company(sessionmaker, size=12, progress=False, posts_per_person=0)
    domain = await free_domain(session)
    assert domain == "acme2.example.com"
    report = await seed_company(sessionmaker, size=12, progress=False, posts_per_person=0.5, domain=domain)
    assert report.people == 12
    assert await session.scalar(select(func.count()).select_from(Person)) == 24
