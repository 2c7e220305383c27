"""People in messaging's directory read model, as the people consumer would have stored them."""

from uuid6 import uuid7

from shared.db import utcnow
from shared.directory import directory_people


async def person(sessionmaker, *, active: bool = True):
    person_id = uuid7()
    async with sessionmaker() as session:
        await session.execute(directory_people.insert().values(
            id=person_id, email=f"{person_id}@corp.local", display_name="P", leader=False, official=False,
            protected=False, active=active, roles=["member"], updated_at=utcnow()))
        await session.commit()
    return person_id


async def people(sessionmaker, n: int):
    return [await person(sessionmaker) for _ in range(n)]
