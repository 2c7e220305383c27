"""Conversations over REST: direct and group, members, admins, read state, receipts; BOLA for every id."""

from uuid6 import uuid7

from services.messaging.realtime.models import frames
from shared.testing import outbox_events
from tests.messaging.factories import people, person

API = "/api/v1/conversations"


async def group(client, keys, admin, members, title="Launch"):
    response = await client.post(API, headers=keys.headers(admin), json={"title": title, "member_ids": [str(m) for m in members]})
    assert response.status_code == 201, response.text
    return response.json()


async def send(client, keys, who, conversation_id, body="hi", **extra):
    response = await client.post(f"{API}/{conversation_id}/messages", headers=keys.headers(who), json={"body": body, **extra})
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_first_direct_message_creates_one_conversation_per_pair(client, keys, sessionmaker, session):
    ana, ben = await people(sessionmaker, 2)
    first = await client.post(f"{API}/direct/{ben}/messages", headers=keys.headers(ana), json={"body": "hello **Ben**"})
    assert first.status_code == 201, first.text
    reply = await client.post(f"{API}/direct/{ana}/messages", headers=keys.headers(ben), json={"body": "hi"})
    assert reply.json()["conversation_id"] == first.json()["conversation_id"]
    assert "<strong>Ben</strong>" in first.json()["body_html"]
    listed = (await client.get(API, headers=keys.headers(ben))).json()["items"]
    assert [c["id"] for c in listed] == [first.json()["conversation_id"]] and listed[0]["kind"] == "direct"
    created = await outbox_events(session, type="hearth.conversation.created")
    assert len(created) == 1 and set(created[0].data["recipients"]) == {str(ana), str(ben)}


async def test_direct_message_to_a_deactivated_or_unknown_person_is_refused(client, keys, sessionmaker):
    ana = await person(sessionmaker)
    gone = await person(sessionmaker, active=False)
    for target in (gone, uuid7()):
        response = await client.post(f"{API}/direct/{target}/messages", headers=keys.headers(ana), json={"body": "x"})
        assert response.status_code == 422 and response.json()["code"] == "person-not-available"
    myself = await client.post(f"{API}/direct/{ana}/messages", headers=keys.headers(ana), json={"body": "x"})
    assert myself.status_code == 422


async def test_group_admin_adds_and_removes_members_and_members_cannot(client, keys, sessionmaker, session):
    admin, ben, cara, dan = await people(sessionmaker, 4)
    conv = await group(client, keys, admin, [ben])
    assert conv["my_role"] == "admin" and conv["member_count"] == 2
    refused = await client.post(f"{API}/{conv['id']}/members", headers=keys.headers(ben), json={"person_ids": [str(cara)]})
    assert refused.status_code == 403 and refused.json()["code"] == "not-a-conversation-admin"
    added = await client.post(f"{API}/{conv['id']}/members", headers=keys.headers(admin),
                              json={"person_ids": [str(cara), str(dan)]})
    assert added.status_code == 200 and added.json()["member_count"] == 4
    removed = await client.delete(f"{API}/{conv['id']}/members/{cara}", headers=keys.headers(admin))
    assert removed.status_code == 204
    assert (await client.get(f"{API}/{conv['id']}", headers=keys.headers(cara))).status_code == 404
    gone = await client.post(f"{API}/{conv['id']}/messages", headers=keys.headers(cara), json={"body": "still here?"})
    assert gone.status_code == 404 and gone.json()["code"] == "conversation-not-found"
    left = await client.delete(f"{API}/{conv['id']}/members/{dan}", headers=keys.headers(dan))
    assert left.status_code == 204
    events = await outbox_events(session, type="hearth.conversation.member_removed")
    assert [(e.data["person_id"], e.data["left"]) for e in events] == [(str(cara), False), (str(dan), True)]
    assert str(cara) in events[0].data["recipients"]  # the removed person's sockets learn it too


async def test_only_active_people_join_and_groups_cap_at_250(client, keys, sessionmaker):
    admin, ben = await people(sessionmaker, 2)
    gone = await person(sessionmaker, active=False)
    refused = await client.post(API, headers=keys.headers(admin), json={"title": "x", "member_ids": [str(gone)]})
    assert refused.status_code == 422 and refused.json()["code"] == "person-not-available"
    too_many = await client.post(API, headers=keys.headers(admin),
                                 json={"title": "x", "member_ids": [str(uuid7()) for _ in range(250)]})
    assert too_many.status_code == 422  # the schema allows 249 others at most
    empty_title = await client.post(API, headers=keys.headers(admin), json={"title": "  ", "member_ids": [str(ben)]})
    assert empty_title.status_code == 422


async def test_last_admin_leaving_hands_the_group_to_the_oldest_member(client, keys, sessionmaker):
    admin, ben, cara = await people(sessionmaker, 3)
    conv = await group(client, keys, admin, [ben, cara])
    assert (await client.delete(f"{API}/{conv['id']}/members/{admin}", headers=keys.headers(admin))).status_code == 204
    detail = (await client.get(f"{API}/{conv['id']}", headers=keys.headers(ben))).json()
    assert [m["role"] for m in detail["members"]].count("admin") == 1


async def test_rename_and_roles_by_admins_only(client, keys, sessionmaker):
    admin, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, admin, [ben])
    assert (await client.patch(f"{API}/{conv['id']}", headers=keys.headers(ben), json={"title": "Mine"})).status_code == 403
    renamed = await client.patch(f"{API}/{conv['id']}", headers=keys.headers(admin), json={"title": "Ship it"})
    assert renamed.json()["title"] == "Ship it"
    promoted = await client.patch(f"{API}/{conv['id']}/members/{ben}", headers=keys.headers(admin), json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert (await client.patch(f"{API}/{conv['id']}", headers=keys.headers(ben), json={"title": "Ours"})).status_code == 200


async def test_unread_counts_per_conversation_and_in_total(client, keys, sessionmaker):
    ana, ben, cara = await people(sessionmaker, 3)
    one = await group(client, keys, ana, [ben, cara])
    two = await group(client, keys, cara, [ben])
    sent = [await send(client, keys, ana, one["id"], f"m{i}") for i in range(3)]
    await send(client, keys, cara, two["id"], "other")
    assert (await client.get(f"{API}/unread", headers=keys.headers(ben))).json() == {"unread": 4, "conversations": 2}
    read = await client.post(f"{API}/{one['id']}/read", headers=keys.headers(ben), json={"message_id": sent[1]["id"]})
    assert read.status_code == 200 and read.json()["unread"] == 1
    # The marker never moves back.
    await client.post(f"{API}/{one['id']}/read", headers=keys.headers(ben), json={"message_id": sent[0]["id"]})
    listed = {c["id"]: c["unread"] for c in (await client.get(API, headers=keys.headers(ben))).json()["items"]}
    assert listed == {one["id"]: 1, two["id"]: 1}
    assert (await client.get(f"{API}/unread", headers=keys.headers(ana))).json() == {"unread": 0, "conversations": 0}
    await send(client, keys, ben, two["id"], "replying reads what came before")
    assert (await client.get(f"{API}/unread", headers=keys.headers(ben))).json() == {"unread": 1, "conversations": 1}


async def test_receipts_follow_the_policy_and_the_size_limit(client, keys, sessionmaker, session, settings, app):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])
    message = await send(client, keys, ana, conv["id"])
    await client.post(f"{API}/{conv['id']}/read", headers=keys.headers(ben), json={"message_id": message["id"]})
    [event] = await outbox_events(session, type="hearth.conversation.read")
    assert set(event.data["recipients"]) == {str(ana), str(ben)}
    detail = (await client.get(f"{API}/{conv['id']}", headers=keys.headers(ana))).json()
    assert {m["person_id"]: m["last_read_message_id"] for m in detail["members"]}[str(ben)] == message["id"]

    # user_choice: Ben turns receipts off, so only his own devices hear of his reading.
    settings.messaging_receipts_policy = "user_choice"
    try:
        await client.put(f"{API}/preferences", headers=keys.headers(ben), json={"read_receipts": False})
        second = await send(client, keys, ana, conv["id"])
        await client.post(f"{API}/{conv['id']}/read", headers=keys.headers(ben), json={"message_id": second["id"]})
        event = (await outbox_events(session, type="hearth.conversation.read"))[-1]
        assert event.data["recipients"] == [str(ben)]
        detail = (await client.get(f"{API}/{conv['id']}", headers=keys.headers(ana))).json()
        assert {m["person_id"]: m["last_read_message_id"] for m in detail["members"]}[str(ben)] is None
    finally:
        settings.messaging_receipts_policy = "everyone"

    big = await group(client, keys, ana, await people(sessionmaker, 20))  # 21 members: no receipts
    assert big["receipts"] is False
    third = await send(client, keys, ana, big["id"])
    reader = big["members"][1]["person_id"]
    from uuid import UUID
    await client.post(f"{API}/{big['id']}/read", headers=keys.headers(UUID(reader)), json={"message_id": third["id"]})
    event = (await outbox_events(session, type="hearth.conversation.read"))[-1]
    assert event.data["recipients"] == [reader]


async def test_every_state_change_writes_frames_for_its_recipients(client, keys, sessionmaker, session):
    ana, ben = await people(sessionmaker, 2)
    conv = await group(client, keys, ana, [ben])
    before = await frames.last_seq(session, ben)
    message = await send(client, keys, ana, conv["id"], "frame me")
    stored = await frames.read(session, person_id=ben, after=before)
    assert [f["type"] for f in stored] == ["message.created"] and stored[0]["seq"] == before + 1
    assert stored[0]["data"]["id"] == message["id"]
    [sent] = await outbox_events(session, type="hearth.message.sent")
    assert set(sent.data["recipients"]) == {str(ana), str(ben)} and sent.subject == conv["id"]


async def test_someone_elses_conversation_is_404_for_every_route(client, keys, sessionmaker):
    ana, ben, mallory = await people(sessionmaker, 3)
    conv = await group(client, keys, ana, [ben])
    message = await send(client, keys, ana, conv["id"])
    h = keys.headers(mallory)
    cid, mid = conv["id"], message["id"]
    attempts = [
        client.get(f"{API}/{cid}", headers=h),
        client.patch(f"{API}/{cid}", headers=h, json={"title": "mine"}),
        client.post(f"{API}/{cid}/members", headers=h, json={"person_ids": [str(mallory)]}),
        client.patch(f"{API}/{cid}/members/{ben}", headers=h, json={"role": "admin"}),
        client.delete(f"{API}/{cid}/members/{ben}", headers=h),
        client.post(f"{API}/{cid}/read", headers=h, json={"message_id": mid}),
        client.get(f"{API}/{cid}/messages", headers=h),
        client.post(f"{API}/{cid}/messages", headers=h, json={"body": "let me in"}),
        client.patch(f"{API}/{cid}/messages/{mid}", headers=h, json={"body": "x"}),
        client.delete(f"{API}/{cid}/messages/{mid}", headers=h),
        client.get(f"{API}/{cid}/messages/{mid}/edits", headers=h),
        client.put(f"{API}/{cid}/messages/{mid}/reactions/👍", headers=h),
        client.delete(f"{API}/{cid}/messages/{mid}/reactions/👍", headers=h),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, (response.request.method, response.request.url, response.text)
    assert (await client.get(f"{API}/messages/search?q=hi", headers=h)).json()["items"] == []
    # A message id from another conversation of mine is not reachable through this one either.
    mine = await group(client, keys, mallory, [])
    crossed = await client.patch(f"{API}/{mine['id']}/messages/{mid}", headers=h, json={"body": "x"})
    assert crossed.status_code == 404
    assert (await client.get(f"{API}/{cid}", headers=keys.headers(ana))).json()["title"] == "Launch"


async def test_routes_require_a_token_and_valid_ids(client, keys):
    assert (await client.get(API)).status_code == 401
    assert (await client.get(f"{API}/not-a-uuid", headers=keys.headers(uuid7()))).status_code == 422
    assert (await client.get(f"{API}?cursor=garbage", headers=keys.headers(uuid7()))).status_code == 422


async def test_an_idempotency_key_makes_a_retried_group_creation_one_group(client, keys, sessionmaker):
    ana, ben = await people(sessionmaker, 2)
    headers = keys.headers(ana) | {"Idempotency-Key": "create-team-1"}
    body = {"title": "Once", "member_ids": [str(ben)]}
    first = await client.post(API, headers=headers, json=body)
    again = await client.post(API, headers=headers, json=body)
    assert first.status_code == again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    titles = [c["title"] for c in (await client.get(API, headers=keys.headers(ana))).json()["items"]]
    assert titles.count("Once") == 1
    other = await client.post(API, headers=headers, json=body | {"title": "Twice"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency-key-reused"
