from datetime import timedelta

from shared.directory import get_person, people_consumer
from shared.events import Envelope, PersonUpdated
from tests.events import person_created


async def test_people_read_model_applies_newest_snapshot_only(settings, sessionmaker):
    consumer = people_consumer(settings)
    created = person_created(department="Sales")
    newer = created.payload().person.model_copy(update={"department": "Support",
                                                        "updated_at": created.payload().person.updated_at
                                                        + timedelta(seconds=5)})
    updated = Envelope.wrap(PersonUpdated(person=newer, changed=["department"]), source="posts", subject=newer.id)
    for envelope in (created, updated, person_created(**created.payload().person.model_dump())):
        # The last one is an old snapshot under a new event id: it must not roll the directory back.
        await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])
    async with sessionmaker() as session:
        row = await get_person(session, newer.id)
    assert row["department"] == "Support"
