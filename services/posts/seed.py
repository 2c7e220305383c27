"""`python -m services.posts.seed --people N`: a realistic demo company, through the service functions.

Departments with heads, managers and reports; offices in several countries; skills; leaders; an
official news account; follows along the org chart plus a few across it; then groups (one per
department and a few interest groups) and content: updates with mentions and hashtags, articles,
questions with answers, polls with votes, praise, a pinned must-read announcement, comments and
reactions. Everything goes through the service functions, so the outbox carries every event.

Run it against a running `make run` stack with nothing else to set up: without HEARTH_DATABASE_URL it
finds the embedded server's port in `.hearth/pgdata/postmaster.pid`. Each run seeds a company of its
own (acme.example.com, then acme2.example.com, …), so it never collides with the demo company or an
earlier run.
"""

import argparse
import asyncio
import os
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from faker import Faker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from tqdm import tqdm

from services.posts.auth.passwords import hash_password
from services.posts.config import Settings
from services.posts.content import announcements, engagement
from services.posts.content import service as content
from services.posts.content.models import PollOption
from services.posts.content.schemas import CommentCreate, PollCreate, PostCreate
from services.posts.graph import service as graph
from services.posts.groups import service as groups
from services.posts.groups.models import GroupMember
from services.posts.groups.schemas import GroupCreate
from services.posts.people import service as people
from services.posts.people.models import Person
from services.posts.people.schemas import PersonCreate
from shared.auth import CurrentUser
from shared.db import database_url, make_sessionmaker

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
    groups: int = 0
    posts: int = 0
    comments: int = 0
    reactions: int = 0


class Company:
    def __init__(self, size: int, seed: int, domain: str = DOMAIN):
        self.size, self.rng, self.fake, self.domain = size, random.Random(seed), Faker(), domain
        self.fake.seed_instance(seed)
        self.emails: set[str] = set()

    def person(self, department: str | None, title: str, manager: Person | None, **extra) -> PersonCreate:
        first, last = self.fake.first_name(), self.fake.last_name()
        email = f"{first}.{last}@{self.domain}".lower().replace(" ", "").replace("'", "")
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


async def seed_company(sessionmaker: async_sessionmaker, *, size: int, seed: int = 7, progress: bool = True,
                       domain: str = DOMAIN, posts_per_person: float = 1.0) -> SeedReport:
    """Create a company of `size` people (at least 12), their follows, groups and content."""
    company, password_hash = Company(max(size, 12), seed, domain), hash_password(DEMO_PASSWORD)
    bar = tqdm(total=company.size, unit="people", desc="people", disable=not progress)
    created: list[Person] = []
    async with sessionmaker() as session:

        async def add(data: PersonCreate) -> Person:
            person = await people.create(session, data=data, actor=None)
            person.password_hash = password_hash  # one argon2 hash for the demo password, not 10,000
            created.append(person)
            bar.update(1)
            if len(created) % 200 == 0:
                await session.commit()
            return person

        ceo = await add(company.person(None, "Chief Executive Officer", None, leader=True, roles=["communications"]))
        news = await add(PersonCreate(email=f"news@{domain}", display_name="Acme News", official=True,
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
    report = SeedReport(people=len(created), follows=follows)
    if posts_per_person > 0:
        await _seed_content(sessionmaker, company, created, news, heads, report, posts_per_person, progress)
    return report


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


# --- content ----------------------------------------------------------------------------------------

TOPICS = ["launch", "onboarding", "security", "customers", "hiring", "offsite", "roadmap", "wellbeing", "kudos"]
INTERESTS = [("Running club", "public"), ("Book club", "public"), ("Parents", "private"),
             ("Leadership forum", "secret")]
BADGES = ["thank-you", "team-player", "above-and-beyond", "innovator", "mentor", "customer-hero"]
REACTIONS = ["like", "celebrate", "support", "insightful", "funny"]


def as_user(person: Person) -> CurrentUser:
    return CurrentUser(id=person.id, roles=frozenset(person.roles), scopes=None)


def _post_data(company: Company, author: Person, everyone: list[Person], group_id, kind: str) -> PostCreate:
    rng, fake = company.rng, company.fake
    tag = rng.choice(TOPICS)
    other = rng.choice(everyone)
    text = f"{fake.sentence(nb_words=12)} #{tag}" + (f" cc @{other.handle}" if rng.random() < 0.3 else "")
    fields = {"kind": kind, "body": text, "group_id": group_id}
    if kind == "article":
        fields |= {"title": fake.sentence(nb_words=5).rstrip("."),
                   "body": "\n\n".join(fake.paragraphs(nb=3)) + f"\n\n**Takeaway:** {fake.sentence()} #{tag}"}
    elif kind == "question":
        fields["body"] = f"{fake.sentence(nb_words=9).rstrip('.')}? #{tag}"
    elif kind == "poll":
        fields["poll"] = PollCreate(options=list(dict.fromkeys(fake.words(nb=rng.randint(2, 4), unique=True))) or
                                    ["yes", "no"], multiple=rng.random() < 0.3)
    elif kind == "praise":
        fields |= {"recipients": [other.id] if other.id != author.id else [everyone[0].id],
                   "badge": rng.choice(BADGES), "body": f"Thank you @{other.handle}! {fake.sentence()}"}
    return PostCreate(**fields)


async def _seed_groups(session, company: Company, created: list[Person], heads: dict) -> list:
    """One group per department (its head owns it, its people are members) and a few interest groups."""
    made = []
    for department, head in heads.items():
        group = await groups.create(session, data=GroupCreate(name=f"{department} ({company.domain})",
                                                              visibility="public"), actor_id=head.id)
        for person in created:
            if person.department == department and person.id != head.id:
                await groups.add_member(session, group=group, person_id=person.id, actor_id=head.id)
        made.append(group)
    for name, visibility in INTERESTS:
        owner = company.rng.choice(created)
        group = await groups.create(session, data=GroupCreate(name=f"{name} ({company.domain})",
                                                              visibility=visibility), actor_id=owner.id)
        for person in company.rng.sample(created, k=min(len(created), max(3, len(created) // 10))):
            await groups.add_member(session, group=group, person_id=person.id, actor_id=owner.id)
        made.append(group)
    await session.commit()
    return made


async def _seed_content(sessionmaker, company: Company, created: list[Person], news: Person, heads: dict,
                        report: SeedReport, posts_per_person: float, progress: bool) -> None:
    rng, by_id = company.rng, {p.id: p for p in created}
    async with sessionmaker() as session:
        made_groups = await _seed_groups(session, company, created, heads)
        report.groups = len(made_groups)
        members = {g.id: set(await session.scalars(select(GroupMember.person_id).where(GroupMember.group_id == g.id)))
                   for g in made_groups}
        pinned = datetime.now(UTC) + timedelta(days=7)
        notice = await content.create(session, author=as_user(news), data=PostCreate(
            kind="announcement", body="**Please read:** the updated security policy applies from Monday. #security",
            must_read=True, pinned_until=pinned))
        await session.commit()
        posts = [notice]
        kinds = ["update"] * 12 + ["article", "question", "question", "poll", "praise"]
        for _ in tqdm(range(int(len(created) * posts_per_person)), unit="posts", desc="posts", disable=not progress):
            author = rng.choice(created)
            options = [g for g in made_groups if author.id in members[g.id]]
            group = rng.choice(options) if options and rng.random() < 0.35 else None
            data = _post_data(company, author, created, group.id if group else None, rng.choice(kinds))
            posts.append(await content.create(session, data=data, author=as_user(author)))
            await session.commit()  # a script owns its session: service functions never commit
        report.posts = len(posts)
        for post in tqdm(posts, unit="posts", desc="engagement", disable=not progress):
            sample = [p.id for p in rng.sample(created, k=min(6, len(created)))]
            readers = [r for r in await content.readers_among(session, post, sample) if r != post.author_id]
            for reader_id in readers[: rng.randint(0, len(readers))]:
                reader = as_user(by_id[reader_id])
                roll = rng.random()
                if roll < 0.5:
                    await engagement.react(session, post_id=post.id, kind=rng.choice(REACTIONS), user=reader)
                    report.reactions += 1
                elif roll < 0.75:
                    comment = await engagement.create_comment(session, post_id=post.id, user=reader,
                                                              data=CommentCreate(body=company.fake.sentence()))
                    report.comments += 1
                    if post.kind == "question" and post.best_answer_id is None:
                        await engagement.accept_answer(session, post_id=post.id, comment_id=comment.id,
                                                       user=as_user(by_id[post.author_id]))
                elif post.kind == "poll":
                    option = await session.scalar(select(PollOption.id).where(PollOption.post_id == post.id).limit(1))
                    await engagement.vote(session, post_id=post.id, option_ids=[option], user=reader)
                elif post.kind == "announcement":
                    await announcements.acknowledge(session, post_id=post.id, user=reader)
                await engagement.record_views(session, post_ids=[post.id], user=reader)
            await session.commit()


# --- the command -----------------------------------------------------------------------------------

def running_stack_url() -> str:
    """The server of a running `make run` (HEARTH_DATABASE_URL, else the embedded server's data folder)."""
    if os.environ.get("HEARTH_DATABASE_URL"):
        return os.environ["HEARTH_DATABASE_URL"]
    from shared.devstack.postgres import EmbeddedPostgres  # development only (the dev extra)

    data_dir = Path(os.environ.get("HEARTH_DATA_DIR", Path(__file__).resolve().parents[2] / ".hearth"))
    port = EmbeddedPostgres(data_dir / "pgdata").running_port()
    if port is None:
        raise SystemExit(f"no PostgreSQL running in {data_dir / 'pgdata'}: start `make run` or set HEARTH_DATABASE_URL")
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


async def free_domain(session) -> str:
    """acme.example.com, or acme2.example.com, … — the first no one in the directory has an email at."""
    for n in range(1, 10_000):
        domain = DOMAIN if n == 1 else DOMAIN.replace("acme", f"acme{n}", 1)
        if await session.scalar(select(Person.id).where(Person.email.like(f"%@{domain}")).limit(1)) is None:
            return domain
    raise SystemExit("no free demo domain left")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--posts-per-person", type=float, default=1.0, help="content to create (0: people only)")
    parser.add_argument("--domain", help="email domain of the company (default: the first free acmeN.example.com)")
    args = parser.parse_args()

    async def run():
        settings = Settings()
        # Seed data can afford to skip waiting for each commit's WAL flush (no risk of corruption).
        engine = create_async_engine(database_url(running_stack_url(), settings.database_name),
                                     connect_args={"server_settings": {"synchronous_commit": "off"}})
        try:
            sessionmaker = make_sessionmaker(engine, service="posts")
            async with sessionmaker() as session:
                domain = args.domain or await free_domain(session)
            report = await seed_company(sessionmaker, size=args.people, seed=args.seed, domain=domain,
                                        posts_per_person=args.posts_per_person)
        finally:
            await engine.dispose()
        print(f"seeded {report.people} people at {domain}, {report.follows} follows, {report.groups} groups, "
              f"{report.posts} posts, {report.comments} comments, {report.reactions} reactions; "
              f"password for all: {DEMO_PASSWORD}")

    asyncio.run(run())


if __name__ == "__main__":
    main()
