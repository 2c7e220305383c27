"""`python -m services.posts.seed --people N`: a realistic demo company, through the service functions.

Departments with heads, managers and reports; offices in several countries; skills; leaders; an
official news account; follows along the org chart plus a few across it. Everything goes through the
people and graph services, so the outbox carries every person and follow to the other services.
"""

import argparse
import asyncio
import random
from dataclasses import dataclass
from datetime import date, timedelta

from faker import Faker
from sqlalchemy.ext.asyncio import async_sessionmaker
from tqdm import tqdm

from services.posts.auth.passwords import hash_password
from services.posts.config import Settings
from services.posts.graph import service as graph
from services.posts.people import service as people
from services.posts.people.models import Person
from services.posts.people.schemas import PersonCreate
from shared.db import make_engine, make_sessionmaker

DEMO_PASSWORD = "hearth-demo"
DOMAIN = "acme.example.com"
OFFICES = [("Lisbon", "PT", "Europe/Lisbon"), ("Berlin", "DE", "Europe/Berlin"), ("New York", "US", "America/New_York"),
           ("São Paulo", "BR", "America/Sao_Paulo"), ("Bangalore", "IN", "Asia/Kolkata"),
           ("Singapore", "SG", "Asia/Singapore")]
DEPARTMENTS = {  # name: (share of the company, skills people there list)
    "Engineering": (0.30, ["Python", "Kafka", "PostgreSQL", "Kubernetes", "React", "Go", "Security"]),
    "Sales": (0.15, ["Negotiation", "Salesforce", "Enterprise sales", "Forecasting"]),
    "Customer Support": (0.12, ["Zendesk", "Troubleshooting", "Onboarding", "Empathy"]),
    "Marketing": (0.09, ["SEO", "Content", "Brand", "Events", "Analytics"]),
    "Product": (0.07, ["Roadmapping", "User research", "Analytics", "Pricing"]),
    "Design": (0.05, ["Figma", "Accessibility", "Illustration", "UX writing"]),
    "Operations": (0.08, ["Logistics", "Procurement", "Excel", "Lean"]),
    "Finance": (0.06, ["Accounting", "FP&A", "Excel", "Tax"]),
    "People": (0.05, ["Recruiting", "Compensation", "Coaching", "Employment law"]),
    "Legal": (0.03, ["Contracts", "Privacy", "Compliance"]),
}
TEAM_SIZE = 7  # reports per manager


@dataclass
class SeedReport:
    people: int
    follows: int


class Company:
    def __init__(self, size: int, seed: int):
        self.size, self.rng, self.fake = size, random.Random(seed), Faker()
        self.fake.seed_instance(seed)
        self.emails: set[str] = set()

    def person(self, department: str | None, title: str, manager: Person | None, **extra) -> PersonCreate:
        first, last = self.fake.first_name(), self.fake.last_name()
        email = f"{first}.{last}@{DOMAIN}".lower().replace(" ", "").replace("'", "")
        while email in self.emails:
            email = email.replace("@", f"{self.rng.randint(2, 99)}@", 1)
        self.emails.add(email)
        site, country, tz = self.rng.choice(OFFICES)
        skills = self.rng.sample(DEPARTMENTS[department][1], k=min(3, len(DEPARTMENTS[department][1]))) \
            if department else []
        return PersonCreate(email=email, display_name=f"{first} {last}", title=title, department=department,
                            location=site, country=country, time_zone=tz, skills=skills,
                            manager_id=manager.id if manager else None,
                            hire_date=date.today() - timedelta(days=self.rng.randint(20, 8 * 365)), **extra)

    def department_sizes(self, remaining: int) -> dict[str, int]:
        sizes = {name: max(1, int(share * remaining)) for name, (share, _) in DEPARTMENTS.items()}
        sizes["Engineering"] += remaining - sum(sizes.values())
        return sizes


async def seed_company(sessionmaker: async_sessionmaker, *, size: int, seed: int = 7,
                       progress: bool = True) -> SeedReport:
    """Create a company of `size` people (at least 12) and their follows."""
    company, password_hash = Company(max(size, 12), seed), hash_password(DEMO_PASSWORD)
    bar = tqdm(total=company.size, unit="people", desc="people", disable=not progress)
    created: list[Person] = []
    async with sessionmaker() as session:

        async def add(data: PersonCreate) -> Person:
            person = await people.create(session, data=data, actor=None, commit=False)
            person.password_hash = password_hash  # one argon2 hash for the demo password, not 10,000
            created.append(person)
            bar.update(1)
            if len(created) % 200 == 0:
                await session.commit()
            return person

        ceo = await add(company.person(None, "Chief Executive Officer", None, leader=True, roles=["communications"]))
        news = await add(PersonCreate(email=f"news@{DOMAIN}", display_name="Acme News", official=True,
                                      roles=["communications"], title="Company news"))
        heads, teams = {}, {}
        for department, count in company.department_sizes(company.size - len(created)).items():
            heads[department] = await add(company.person(department, f"Head of {department}", ceo, leader=True))
            managers = [await add(company.person(department, f"{department} Manager", heads[department]))
                        for _ in range(max(0, (count - 1) // (TEAM_SIZE + 1)))] or [heads[department]]
            teams[department] = {m.id: [] for m in managers}
            for i in range(count - 1 - (len(managers) if managers[0] is not heads[department] else 0)):
                manager = managers[i % len(managers)]
                teams[department][manager.id].append(
                    await add(company.person(department, company.rng.choice(["Specialist", "Senior Specialist",
                                                                             "Associate", "Lead"]), manager)))
        await session.commit()
        bar.close()
        follows = await _seed_follows(session, company, created, ceo, news, heads, progress)
        await session.commit()
    return SeedReport(people=len(created), follows=follows)


async def _seed_follows(session, company: Company, created: list[Person], ceo: Person, news: Person, heads, progress):
    """Everyone follows their manager, their team and the news account; many follow the CEO and heads."""
    rng, count = company.rng, 0
    by_manager: dict = {}
    for person in created:
        by_manager.setdefault(person.manager_id, []).append(person)
    for person in tqdm(created, unit="people", desc="follows", disable=not progress):
        targets = {news.id}
        if person.manager_id:
            targets.add(person.manager_id)
            targets.update(p.id for p in rng.sample(by_manager[person.manager_id],
                                                    k=min(4, len(by_manager[person.manager_id]))))
        if rng.random() < 0.6:
            targets.add(ceo.id)
        targets.update(h.id for h in rng.sample(list(heads.values()), k=2))
        targets.update(p.id for p in rng.sample(created, k=min(3, len(created))))  # across the org chart
        targets.discard(person.id)
        for target in targets:
            await graph.add_follow(session, follower_id=person.id, followee_id=target, actor=None, via_request=False)
            count += 1
        if count % 2000 < len(targets):
            await session.commit()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    async def run():
        settings = Settings()
        engine = make_engine(settings.service_database_url)
        try:
            report = await seed_company(make_sessionmaker(engine, service="posts"), size=args.people, seed=args.seed)
        finally:
            await engine.dispose()
        print(f"seeded {report.people} people and {report.follows} follows; password for all: {DEMO_PASSWORD}")

    asyncio.run(run())


if __name__ == "__main__":
    main()
