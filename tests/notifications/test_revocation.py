"""API tokens outside posts: revocations and deactivations arrive on people.v1 and are checked locally."""

from datetime import timedelta

from sqlalchemy import select
from uuid6 import uuid7

from shared.auth import API_TOKEN_TYPE
from shared.directory import people_consumer
from shared.events import ApiTokenRevoked, Envelope, PersonDeactivated, SessionRevoked
from shared.outbox import revoked_tokens_table
from tests.events import person_created


def api_token_headers(keys, person_id, *, scopes, token_id=None) -> dict[str, str]:
    token = keys.key.sign(subject=person_id, roles=["member"], scopes=scopes, ttl=timedelta(days=30),
                          issuer="hearth", audience="hearth", token_id=str(token_id or uuid7()),
                          token_type=API_TOKEN_TYPE)
    return {"Authorization": f"Bearer {token}"}


async def apply(settings, sessionmaker, envelope: Envelope) -> None:
    consumer = people_consumer(settings)
    await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])


async def test_revoked_api_token_is_refused_once_the_event_is_consumed(client, settings, sessionmaker, session, keys):
    created = person_created()
    person_id = created.payload().person.id
    await apply(settings, sessionmaker, created)
    token_id, other_id = uuid7(), uuid7()
    headers = api_token_headers(keys, person_id, scopes=["notifications:read"], token_id=token_id)
    other = api_token_headers(keys, person_id, scopes=["notifications:read"], token_id=other_id)
    assert (await client.get("/api/v1/notifications", headers=headers)).status_code == 200
    revoked = Envelope.wrap(ApiTokenRevoked(token_id=token_id, person_id=person_id), source="posts", subject=token_id)
    await apply(settings, sessionmaker, revoked)
    await apply(settings, sessionmaker, revoked)  # redelivery is a no-op
    refused = await client.get("/api/v1/notifications", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "token-revoked"
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/notifications", headers=other)).status_code == 200
    row = (await session.execute(select(revoked_tokens_table))).one()
    assert row.jti == token_id and row.expires_at > row.revoked_at


async def test_deactivated_persons_api_tokens_are_refused(client, settings, sessionmaker, keys):
    created = person_created()
    person = created.payload().person
    await apply(settings, sessionmaker, created)
    headers = api_token_headers(keys, person.id, scopes=["notifications:read"])
    assert (await client.get("/api/v1/notifications/unread-count", headers=headers)).status_code == 200
    gone = person.model_copy(update={"active": False, "updated_at": person.updated_at + timedelta(seconds=1)})
    await apply(settings, sessionmaker, Envelope.wrap(PersonDeactivated(person=gone), source="posts", subject=gone.id))
    refused = await client.get("/api/v1/notifications/unread-count", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "token-revoked"


async def test_scopes_are_enforced_on_routes_that_do_not_declare_one(client, keys):
    person_id = uuid7()
    wrong = api_token_headers(keys, person_id, scopes=["posts:read"])
    response = await client.get("/api/v1/notifications", headers=wrong)
    assert response.status_code == 403 and response.json()["required_scope"] == "notifications:read"


# Every write under /api/v1/notifications: it needs notifications:write, and notifications:read alone is refused.
WRITES = [("POST", "/api/v1/notifications/read-all", None),
          ("POST", "/api/v1/notifications/{nid}/read", None),
          ("DELETE", "/api/v1/notifications/{nid}", None),
          ("PATCH", "/api/v1/notifications/preferences", {"digest": "daily"}),
          ("PUT", "/api/v1/notifications/preferences/kinds/mention", {"in_app": True, "push": False, "email": False}),
          ("PUT", "/api/v1/notifications/mutes/person/{nid}", None),
          ("DELETE", "/api/v1/notifications/mutes/person/{nid}", None),
          ("POST", "/api/v1/notifications/devices", {"platform": "android", "token": "t-{nid}"}),
          ("DELETE", "/api/v1/notifications/devices/{nid}", None),
          ("POST", "/api/v1/notifications/webhooks", {"url": "http://127.0.0.1:9/x", "event_types": ["x"]}),
          ("PATCH", "/api/v1/notifications/webhooks/{nid}", {"active": False}),
          ("DELETE", "/api/v1/notifications/webhooks/{nid}", None)]


async def test_a_read_only_token_reads_but_cannot_write(client, settings, sessionmaker, keys):
    created = person_created()
    person_id = created.payload().person.id
    await apply(settings, sessionmaker, created)
    reader = api_token_headers(keys, person_id, scopes=["notifications:read"])
    for path in ("", "/unread-count", "/preferences", "/mutes", "/devices", "/webhooks"):
        assert (await client.get(f"/api/v1/notifications{path}", headers=reader)).status_code == 200, path
    nid = uuid7()
    for method, path, body in WRITES:
        json = {k: (v.format(nid=nid) if isinstance(v, str) else v) for k, v in body.items()} if body else None
        response = await client.request(method, path.format(nid=nid), headers=reader, json=json)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["required_scope"] == "notifications:write", (method, path)


async def test_a_write_token_changes_the_callers_own_notifications(client, settings, sessionmaker, keys):
    created = person_created()
    person_id = created.payload().person.id
    await apply(settings, sessionmaker, created)
    writer = api_token_headers(keys, person_id, scopes=["notifications:read", "notifications:write"])
    assert (await client.post("/api/v1/notifications/read-all", headers=writer)).json() == {"marked": 0}
    changed = await client.patch("/api/v1/notifications/preferences", headers=writer, json={"digest": "daily"})
    assert changed.status_code == 200 and changed.json()["digest"] == "daily"
    muted = uuid7()
    assert (await client.put(f"/api/v1/notifications/mutes/person/{muted}", headers=writer)).status_code == 204
    mutes = (await client.get("/api/v1/notifications/mutes", headers=writer)).json()
    assert mutes == [{"target_type": "person", "target_id": str(muted)}]
    device = await client.post("/api/v1/notifications/devices", headers=writer,
                               json={"platform": "android", "token": f"t-{muted}"})
    assert device.status_code == 201
    gone = await client.delete(f"/api/v1/notifications/devices/{device.json()['id']}", headers=writer)
    assert gone.status_code == 204
    # still only the caller's own: someone else's notification is not found, not written
    other = await client.post(f"/api/v1/notifications/{uuid7()}/read", headers=writer)
    assert other.status_code == 404


async def test_session_tokens_are_not_affected_by_revocations(client, settings, sessionmaker, keys):
    person_id = uuid7()
    await apply(settings, sessionmaker, Envelope.wrap(ApiTokenRevoked(token_id=uuid7(), person_id=person_id),
                                                      source="posts", subject=person_id))
    assert (await client.get("/api/v1/notifications", headers=keys.headers(person_id))).status_code == 200


def session_headers(keys, person_id, *, roles=("member",), session_id=None) -> dict[str, str]:
    token = keys.key.sign(subject=person_id, roles=list(roles), scopes=None, ttl=timedelta(minutes=15),
                          issuer="hearth", audience="hearth", session_id=session_id or uuid7())
    return {"Authorization": f"Bearer {token}"}


async def test_ended_session_is_refused_once_the_event_is_consumed(client, settings, sessionmaker, keys):
    created = person_created()
    person_id = created.payload().person.id
    await apply(settings, sessionmaker, created)
    ended_sid, other_sid = uuid7(), uuid7()
    ended, other = session_headers(keys, person_id, session_id=ended_sid), session_headers(keys, person_id,
                                                                                           session_id=other_sid)
    assert (await client.get("/api/v1/notifications", headers=ended)).status_code == 200
    event = Envelope.wrap(SessionRevoked(person_id=person_id, session_ids=[ended_sid]), source="posts",
                          subject=person_id)
    await apply(settings, sessionmaker, event)
    await apply(settings, sessionmaker, event)  # redelivery is a no-op
    refused = await client.get("/api/v1/notifications", headers=ended)
    assert refused.status_code == 401 and refused.json()["code"] == "session-ended"
    assert (await client.get("/api/v1/notifications", headers=other)).status_code == 200


async def test_deactivated_persons_session_tokens_are_refused(client, settings, sessionmaker, keys):
    created = person_created()
    person = created.payload().person
    await apply(settings, sessionmaker, created)
    headers = session_headers(keys, person.id)
    assert (await client.get("/api/v1/notifications/unread-count", headers=headers)).status_code == 200
    gone = person.model_copy(update={"active": False, "updated_at": person.updated_at + timedelta(seconds=1)})
    await apply(settings, sessionmaker, Envelope.wrap(PersonDeactivated(person=gone), source="posts", subject=gone.id))
    refused = await client.get("/api/v1/notifications/unread-count", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "token-revoked"


async def test_roles_come_from_the_read_model_not_the_token(settings, sessionmaker, keys):
    from shared.auth import CurrentUser
    from shared.directory import check_session_token
    created = person_created(roles=["member"])  # a member in the read model
    person = created.payload().person
    await apply(settings, sessionmaker, created)
    claimed = CurrentUser(id=person.id, roles=frozenset({"admin"}), scopes=None, session_id=uuid7())
    async with sessionmaker() as s:
        checked = await check_session_token(s, claimed)
    assert checked.roles == frozenset(person.roles) and "admin" not in checked.roles
