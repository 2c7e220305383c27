from uuid6 import uuid7

from services.notifications.inbox.consumers import social_consumer
from tests.events import post_created


async def deliver(settings, sessionmaker, envelope) -> bool:
    """Apply an event the way the consumer loop does (dedupe row + effect in one transaction)."""
    consumer = social_consumer(settings)
    return await consumer.apply(sessionmaker, envelope, envelope.payload(), consumer.handlers[envelope.type])


async def test_mention_creates_one_notification_even_when_redelivered(settings, sessionmaker, client, keys):
    author, maria = uuid7(), uuid7()
    event = post_created(author, [maria, author])
    assert await deliver(settings, sessionmaker, event) is True
    assert await deliver(settings, sessionmaker, event) is False  # redelivery: dedupe, no second effect
    response = await client.get("/api/v1/notifications", headers=keys.headers(maria))
    [item] = response.json()["items"]
    assert item["kind"] == "mention" and item["actor_id"] == str(author)
    assert item["subject_id"] == event.subject and item["read_at"] is None
    author_inbox = await client.get("/api/v1/notifications", headers=keys.headers(author))
    assert author_inbox.json()["items"] == []  # no notification for mentioning yourself


async def test_inbox_pages_newest_first_with_cursor(settings, sessionmaker, client, keys):
    maria = uuid7()
    for _ in range(5):
        await deliver(settings, sessionmaker, post_created(uuid7(), [maria]))
    headers = keys.headers(maria)
    first = (await client.get("/api/v1/notifications?limit=3", headers=headers)).json()
    second = (await client.get(f"/api/v1/notifications?limit=3&cursor={first['next_cursor']}", headers=headers)).json()
    assert len(first["items"]) == 3 and len(second["items"]) == 2 and second["next_cursor"] is None
    times = [i["created_at"] for i in first["items"] + second["items"]]
    assert times == sorted(times, reverse=True)
    assert len({i["id"] for i in first["items"] + second["items"]}) == 5


async def test_mark_read_and_unread_count(settings, sessionmaker, client, keys):
    maria = uuid7()
    for _ in range(3):
        await deliver(settings, sessionmaker, post_created(uuid7(), [maria]))
    headers = keys.headers(maria)
    assert (await client.get("/api/v1/notifications/unread-count", headers=headers)).json() == {"unread": 3}
    first = (await client.get("/api/v1/notifications", headers=headers)).json()["items"][0]
    read = await client.post(f"/api/v1/notifications/{first['id']}/read", headers=headers)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    assert (await client.get("/api/v1/notifications/unread-count", headers=headers)).json() == {"unread": 2}
    unread = (await client.get("/api/v1/notifications?unread=true", headers=headers)).json()["items"]
    assert first["id"] not in {i["id"] for i in unread} and len(unread) == 2
    assert (await client.post("/api/v1/notifications/read-all", headers=headers)).json() == {"marked": 2}
    assert (await client.get("/api/v1/notifications/unread-count", headers=headers)).json() == {"unread": 0}


async def test_someone_elses_notification_is_404_and_stays_unread(settings, sessionmaker, client, keys):
    maria, mallory = uuid7(), uuid7()
    await deliver(settings, sessionmaker, post_created(uuid7(), [maria]))
    [item] = (await client.get("/api/v1/notifications", headers=keys.headers(maria))).json()["items"]
    stolen = await client.post(f"/api/v1/notifications/{item['id']}/read", headers=keys.headers(mallory))
    assert stolen.status_code == 404 and stolen.json()["code"] == "notification-not-found"
    assert (await client.get("/api/v1/notifications", headers=keys.headers(mallory))).json()["items"] == []
    await client.post("/api/v1/notifications/read-all", headers=keys.headers(mallory))
    assert (await client.get("/api/v1/notifications/unread-count", headers=keys.headers(maria))).json() == {"unread": 1}


async def test_inbox_requires_a_token_and_a_valid_cursor(client, keys):
    assert (await client.get("/api/v1/notifications")).status_code == 401
    bad = await client.get("/api/v1/notifications?cursor=garbage", headers=keys.headers(uuid7()))
    assert bad.status_code == 422 and bad.json()["code"] == "invalid-input"
    too_many = await client.get("/api/v1/notifications?limit=1000", headers=keys.headers(uuid7()))
    assert too_many.status_code == 422


async def test_follow_request_and_invite_notify_their_targets(settings, sessionmaker, client, keys):
    from shared.events import Envelope, FollowCreated, FollowRequested, GroupInvited
    owner, fan, group = uuid7(), uuid7(), uuid7()
    events = [FollowRequested(request_id=uuid7(), follower_id=fan, followee_id=owner),
              FollowCreated(follower_id=fan, followee_id=owner, via_request=True),
              GroupInvited(invite_id=uuid7(), group_id=group, person_id=fan, inviter_id=owner)]
    for payload in events:
        await deliver(settings, sessionmaker, Envelope.wrap(payload, source="posts", subject=owner))
    owner_inbox = await client.get("/api/v1/notifications", headers=keys.headers(owner))
    owner_kinds = [n["kind"] for n in owner_inbox.json()["items"]]
    assert owner_kinds == ["follow"]  # the approved request left the inbox; the new follower arrived
    invite, approved = (await client.get("/api/v1/notifications", headers=keys.headers(fan))).json()["items"]
    assert invite["kind"] == "group_invite" and invite["subject_id"] == str(group)
    assert approved["kind"] == "follow_approved" and approved["actor_id"] == str(owner)


async def test_deactivated_people_are_not_notified(settings, sessionmaker, client, keys):
    from shared.directory import people_consumer
    from tests.events import person_created
    gone = person_created(active=False)
    people = people_consumer(settings)
    await people.apply(sessionmaker, gone, gone.payload(), people.handlers[gone.type])
    gone_id = gone.payload().person.id
    await deliver(settings, sessionmaker, post_created(uuid7(), [gone_id]))
    from sqlalchemy import func, select
    from services.notifications.inbox.models import Notification
    async with sessionmaker() as session:  # (a deactivated person's token is refused, so look in the table)
        assert await session.scalar(select(func.count()).where(Notification.recipient_id == gone_id)) == 0


async def test_delete_is_only_for_the_owner(settings, sessionmaker, client, keys):
    maria, mallory = uuid7(), uuid7()
    await deliver(settings, sessionmaker, post_created(uuid7(), [maria]))
    [item] = (await client.get("/api/v1/notifications", headers=keys.headers(maria))).json()["items"]
    stolen = await client.delete(f"/api/v1/notifications/{item['id']}", headers=keys.headers(mallory))
    assert stolen.status_code == 404 and stolen.json()["code"] == "notification-not-found"
    assert (await client.delete(f"/api/v1/notifications/{item['id']}", headers=keys.headers(maria))).status_code == 204
    assert (await client.get("/api/v1/notifications", headers=keys.headers(maria))).json()["items"] == []
    assert (await client.delete(f"/api/v1/notifications/{item['id']}", headers=keys.headers(maria))).status_code == 404
    from shared.testing import outbox_events
    async with sessionmaker() as session:
        [deleted] = await outbox_events(session, type="hearth.notification.deleted")
    assert deleted.data["notification_ids"] == [item["id"]] and deleted.data["unread"] == 1


async def test_reading_emits_a_read_event_and_a_badge_frame(settings, sessionmaker, client, keys, session):
    from services.notifications.db import frames
    from shared.testing import outbox_events
    maria = uuid7()
    await deliver(settings, sessionmaker, post_created(uuid7(), [maria]))
    await deliver(settings, sessionmaker, post_created(uuid7(), [maria]))
    [first, _] = (await client.get("/api/v1/notifications", headers=keys.headers(maria))).json()["items"]
    await client.post(f"/api/v1/notifications/{first['id']}/read", headers=keys.headers(maria))
    await client.post(f"/api/v1/notifications/{first['id']}/read", headers=keys.headers(maria))  # already read
    await client.post("/api/v1/notifications/read-all", headers=keys.headers(maria))
    reads = await outbox_events(session, type="hearth.notification.read")
    assert [(e.data["count"], e.data["all"]) for e in reads] == [(1, False), (1, True)]
    stored = await frames.read(session, person_id=maria, after=0)
    assert [f["type"] for f in stored] == ["notification", "notification", "badge", "badge"]
    assert [f["data"]["unread"] for f in stored if f["type"] == "badge"] == [1, 0]


async def test_bad_kind_filter_is_422(client, keys):
    response = await client.get("/api/v1/notifications?kind=nonsense", headers=keys.headers(uuid7()))
    assert response.status_code == 422


async def test_a_follow_repeated_within_a_day_notifies_once(settings, sessionmaker, client, keys):
    from shared.events import Envelope, FollowCreated, FollowRemoved
    owner, fan = uuid7(), uuid7()
    for payload in (FollowCreated(follower_id=fan, followee_id=owner),
                    FollowRemoved(follower_id=fan, followee_id=owner),
                    FollowCreated(follower_id=fan, followee_id=owner, quiet=True)):  # posts marks the repeat quiet
        await deliver(settings, sessionmaker, Envelope.wrap(payload, source="posts", subject=owner))
    inbox = (await client.get("/api/v1/notifications", headers=keys.headers(owner))).json()["items"]
    assert [n["kind"] for n in inbox] == []  # the first was withdrawn with the unfollow; the repeat is quiet
