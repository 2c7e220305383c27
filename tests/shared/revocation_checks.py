"""The same revocation checks, run in each service's tests against its own app and people read model."""

from datetime import timedelta

from uuid6 import uuid7

from shared.auth import API_TOKEN_TYPE
from shared.directory import people_consumer
from shared.events import ApiTokenRevoked, Envelope, PersonDeactivated, SessionRevoked
from tests.events import person_created


def api_token(keys, person_id, *, scopes, token_id) -> dict[str, str]:
    token = keys.key.sign(subject=person_id, roles=["admin"], scopes=scopes, ttl=timedelta(days=30), issuer="hearth",
                          audience="hearth", token_id=str(token_id), token_type=API_TOKEN_TYPE)
    return {"Authorization": f"Bearer {token}"}


def session_token(keys, person_id, *, session_id) -> dict[str, str]:
    token = keys.key.sign(subject=person_id, roles=["admin"], scopes=None, ttl=timedelta(minutes=15),
                          issuer="hearth", audience="hearth", session_id=session_id)
    return {"Authorization": f"Bearer {token}"}


async def apply(settings, sessionmaker, envelope: Envelope) -> None:
    consumer = people_consumer(settings)
    await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])


async def check_revocations_are_refused(client, settings, sessionmaker, keys, *, path: str, scope: str) -> None:
    """An API token and a session work, then are refused once people.v1 says revoked / ended / deactivated."""
    created = person_created(roles=["member", "admin"])
    person = created.payload().person
    await apply(settings, sessionmaker, created)
    token_id, sid = uuid7(), uuid7()
    api, session = api_token(keys, person.id, scopes=[scope], token_id=token_id), session_token(keys, person.id,
                                                                                                session_id=sid)
    assert (await client.get(path, headers=api)).status_code == 200
    assert (await client.get(path, headers=session)).status_code == 200
    await apply(settings, sessionmaker, Envelope.wrap(ApiTokenRevoked(token_id=token_id, person_id=person.id),
                                                      source="posts", subject=token_id))
    await apply(settings, sessionmaker, Envelope.wrap(SessionRevoked(person_id=person.id, session_ids=[sid]),
                                                      source="posts", subject=person.id))
    assert (await client.get(path, headers=api)).json()["code"] == "token-revoked"
    assert (await client.get(path, headers=session)).json()["code"] == "session-ended"
    other = session_token(keys, person.id, session_id=uuid7())
    assert (await client.get(path, headers=other)).status_code == 200
    gone = person.model_copy(update={"active": False, "updated_at": person.updated_at + timedelta(seconds=1)})
    await apply(settings, sessionmaker, Envelope.wrap(PersonDeactivated(person=gone), source="posts", subject=gone.id))
    refused = await client.get(path, headers=other)
    assert refused.status_code == 401 and refused.json()["code"] == "token-revoked"
