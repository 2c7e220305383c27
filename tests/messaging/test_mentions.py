"""@mentions in messages: handles come from the people events; only current members are mentioned."""

from shared.db import utcnow
from shared.events import Envelope, PersonSnapshot
from shared.events.payloads import PersonUpdated
from shared.testing import outbox_events
from services.messaging.people.service import people_and_handles_consumer
from tests.messaging.factories import people

API = "/api/v1/conversations"


async def learn_handle(settings, sessionmaker, person_id, handle: str) -> None:
    """What the people consumer does with a person event that carries the handle."""
    consumer = people_and_handles_consumer(settings)
    snapshot = PersonSnapshot(id=person_id, email=f"{handle}@corp.local", display_name=handle, handle=handle,
                              roles=["member"], updated_at=utcnow())
    event = PersonUpdated(person=snapshot)
    async with sessionmaker() as session:
        await consumer.handlers[event.type](session, Envelope.wrap(event, source="posts", subject=person_id), event)
        await session.commit()


async def test_message_sent_mentions_the_members_named_by_handle_only(client, keys, settings, sessionmaker, session):
    ana, ben, cleo, outsider = await people(sessionmaker, 4)
    for person_id, handle in ((ana, "ana"), (ben, "ben.m"), (cleo, "cleo"), (outsider, "out")):
        await learn_handle(settings, sessionmaker, person_id, handle)
    created = await client.post(API, headers=keys.headers(ana),
                                json={"title": "Plan", "member_ids": [str(ben), str(cleo)]})
    conversation_id = created.json()["id"]
    body = "@Ben.M and @cleo, see this; not @out, not @nobody, not mail@cleo, and not me @ana"
    sent = await client.post(f"{API}/{conversation_id}/messages", headers=keys.headers(ana), json={"body": body})
    assert sent.status_code == 201, sent.text
    [event] = await outbox_events(session, type="hearth.message.sent")
    assert sorted(event.data["mentions"]) == sorted([str(ben), str(cleo)])
    assert sent.json()["body"] == body  # unknown names stay text


async def test_a_message_without_mentions_has_none_and_a_removed_member_is_not_mentioned(client, keys, settings,
                                                                                         sessionmaker, session):
    ana, ben = await people(sessionmaker, 2)
    await learn_handle(settings, sessionmaker, ben, "ben")
    conversation_id = (await client.post(API, headers=keys.headers(ana),
                                         json={"title": "Two", "member_ids": [str(ben)]})).json()["id"]
    await client.post(f"{API}/{conversation_id}/messages", headers=keys.headers(ana), json={"body": "hello"})
    removed = await client.delete(f"{API}/{conversation_id}/members/{ben}", headers=keys.headers(ana))
    assert removed.status_code == 204, removed.text
    await client.post(f"{API}/{conversation_id}/messages", headers=keys.headers(ana), json={"body": "bye @ben"})
    events = await outbox_events(session, type="hearth.message.sent")
    assert [e.data["mentions"] for e in events] == [[], []]
