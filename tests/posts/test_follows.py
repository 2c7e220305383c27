from sqlalchemy import func, select

from services.posts.graph.models import Follow, FollowRequest
from shared.testing import outbox_events


async def count(session, model) -> int:
    return await session.scalar(select(func.count()).select_from(model))


async def test_follow_open_account_is_201_and_idempotent(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    first = await client.post(f"/api/v1/people/{bo.id}/follow", headers=auth(ana))
    assert first.status_code == 201 and first.json() == {"state": "following", "request_id": None}
    again = await client.post(f"/api/v1/people/{bo.id}/follow", headers=auth(ana))
    assert again.status_code == 201 and await count(session, Follow) == 1
    [event] = await outbox_events(session, type="hearth.follow.created")
    assert event.payload().follower_id == ana.id and event.subject == str(bo.id)
    followers = (await client.get(f"/api/v1/people/{bo.id}/followers", headers=auth(bo))).json()
    assert [p["id"] for p in followers["items"]] == [str(ana.id)]
    following = (await client.get(f"/api/v1/people/{ana.id}/following", headers=auth(bo))).json()
    assert [p["id"] for p in following["items"]] == [str(bo.id)]


async def test_unfollow_removes_and_emits(client, session, make_person, auth):
    ana, bo = await make_person(), await make_person()
    await client.post(f"/api/v1/people/{bo.id}/follow", headers=auth(ana))
    assert (await client.delete(f"/api/v1/people/{bo.id}/follow", headers=auth(ana))).status_code == 204
    assert await count(session, Follow) == 0
    [event] = await outbox_events(session, type="hearth.follow.removed")
    assert event.payload().reason == "unfollowed"


async def test_cannot_follow_yourself_or_unknown_or_deactivated_people(client, session, make_person, auth):
    ana = await make_person()
    gone = await make_person()
    from services.posts.people import service as people
    await people.deactivate(session, person=await people.get(session, person_id=gone.id), actor=None)
    assert (await client.post(f"/api/v1/people/{ana.id}/follow", headers=auth(ana))).status_code == 422
    assert (await client.post(f"/api/v1/people/{gone.id}/follow", headers=auth(ana))).status_code == 404
    unknown = "0190a000-0000-7000-8000-000000000000"
    assert (await client.post(f"/api/v1/people/{unknown}/follow", headers=auth(ana))).status_code == 404
    assert (await client.post(f"/api/v1/people/{unknown}/follow")).status_code == 401
    assert await count(session, Follow) == 0


async def test_protected_account_turns_follows_into_requests_the_owner_decides(client, session, make_person, auth):
    owner = await make_person(protected=True)
    ana, bo = await make_person(), await make_person()
    asked = await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(ana))
    assert asked.status_code == 202 and asked.json()["state"] == "requested"
    await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(bo))
    assert await count(session, Follow) == 0
    pending = (await client.get("/api/v1/people/me/follow-requests", headers=auth(owner))).json()["items"]
    by_follower = {r["follower"]["id"]: r["id"] for r in pending}
    assert set(by_follower) == {str(ana.id), str(bo.id)}
    approve = await client.post(f"/api/v1/people/me/follow-requests/{by_follower[str(ana.id)]}/approve",
                                headers=auth(owner))
    deny = await client.post(f"/api/v1/people/me/follow-requests/{by_follower[str(bo.id)]}/deny", headers=auth(owner))
    assert approve.status_code == deny.status_code == 204
    follows = (await session.execute(select(Follow.follower_id))).scalars().all()
    assert follows == [ana.id] and await count(session, FollowRequest) == 0
    [created] = await outbox_events(session, type="hearth.follow.created")
    assert created.payload().via_request is True
    [closed] = await outbox_events(session, type="hearth.follow_request.closed")
    assert closed.payload().outcome == "denied"


async def test_someone_elses_follow_request_cannot_be_decided(client, session, make_person, auth):
    owner, mallory = await make_person(protected=True), await make_person()
    ana = await make_person()
    request_id = (await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(ana))).json()["request_id"]
    for action in ("approve", "deny"):
        response = await client.post(f"/api/v1/people/me/follow-requests/{request_id}/{action}", headers=auth(mallory))
        assert response.status_code == 404 and response.json()["code"] == "follow-request-not-found"
    # The requester cannot approve their own request either.
    assert (await client.post(f"/api/v1/people/me/follow-requests/{request_id}/approve",
                              headers=auth(ana))).status_code == 404
    assert await count(session, FollowRequest) == 1 and await count(session, Follow) == 0
    assert (await client.get("/api/v1/people/me/follow-requests", headers=auth(mallory))).json()["items"] == []


async def test_requester_can_cancel_a_pending_request(client, session, make_person, auth):
    owner, ana = await make_person(protected=True), await make_person()
    await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(ana))
    assert (await client.delete(f"/api/v1/people/{owner.id}/follow", headers=auth(ana))).status_code == 204
    assert await count(session, FollowRequest) == 0
    [closed] = await outbox_events(session, type="hearth.follow_request.closed")
    assert closed.payload().outcome == "cancelled"


async def test_protected_follower_lists_are_hidden_from_non_followers(client, make_person, auth):
    owner, fan, stranger = await make_person(protected=True), await make_person(), await make_person()
    request_id = (await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(fan))).json()["request_id"]
    await client.post(f"/api/v1/people/me/follow-requests/{request_id}/approve", headers=auth(owner))
    for path in ("followers", "following"):
        hidden = await client.get(f"/api/v1/people/{owner.id}/{path}", headers=auth(stranger))
        assert hidden.status_code == 403 and hidden.json()["code"] == "followers-hidden"
        assert (await client.get(f"/api/v1/people/{owner.id}/{path}", headers=auth(fan))).status_code == 200
        assert (await client.get(f"/api/v1/people/{owner.id}/{path}", headers=auth(owner))).status_code == 200


async def test_owner_removes_a_follower(client, session, make_person, auth):
    owner, fan, other = await make_person(), await make_person(), await make_person()
    await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(fan))
    await client.post(f"/api/v1/people/{other.id}/follow", headers=auth(fan))
    # Removing someone who follows somebody else is not yours to do.
    assert (await client.delete(f"/api/v1/people/me/followers/{fan.id}", headers=auth(other))).status_code == 204
    assert (await client.delete(f"/api/v1/people/me/followers/{fan.id}", headers=auth(owner))).status_code == 204
    assert (await client.delete(f"/api/v1/people/me/followers/{fan.id}", headers=auth(owner))).status_code == 404
    remaining = (await session.execute(select(Follow.followee_id))).scalars().all()
    assert remaining == []
    events = await outbox_events(session, type="hearth.follow.removed")
    assert {e.payload().reason for e in events} == {"removed_by_followee"}


async def test_turning_protection_on_keeps_followers_and_off_approves_pending(client, session, make_person, auth):
    owner, early, late = await make_person(), await make_person(), await make_person()
    await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(early))
    assert (await client.patch("/api/v1/people/me", headers=auth(owner), json={"protected": True})).status_code == 200
    assert (await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(late))).status_code == 202
    followers = (await client.get(f"/api/v1/people/{owner.id}/followers", headers=auth(owner))).json()["items"]
    assert [f["id"] for f in followers] == [str(early.id)]
    assert (await client.patch("/api/v1/people/me", headers=auth(owner), json={"protected": False})).status_code == 200
    followers = (await client.get(f"/api/v1/people/{owner.id}/followers", headers=auth(owner))).json()["items"]
    assert {f["id"] for f in followers} == {str(early.id), str(late.id)}
    assert await count(session, FollowRequest) == 0


async def test_protected_accounts_posts_are_for_approved_followers_only(client, session, make_person, auth):
    owner, fan, stranger = await make_person(protected=True), await make_person(), await make_person()
    request_id = (await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(fan))).json()["request_id"]
    await client.post(f"/api/v1/people/me/follow-requests/{request_id}/approve", headers=auth(owner))
    post = (await client.post("/api/v1/posts", headers=auth(owner),
                              json={"body": f"hi @{fan.handle} and @{stranger.handle}"})).json()
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(fan))).status_code == 200
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(stranger))).status_code == 404
    [event] = await outbox_events(session, type="hearth.post.created")
    assert event.payload().mentions == [fan.id]  # the stranger is not told about a post they cannot read


async def test_followers_only_post_reaches_followers(client, session, make_person, auth):
    author, fan, stranger = await make_person(), await make_person(), await make_person()
    await client.post(f"/api/v1/people/{author.id}/follow", headers=auth(fan))
    post = (await client.post("/api/v1/posts", headers=auth(author),
                              json={"body": "followers only", "audience": "followers"})).json()
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(fan))).status_code == 200
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(stranger))).status_code == 404


async def test_follow_unfollow_follow_notifies_once_a_day(client, session, make_person, auth):
    from datetime import timedelta

    from sqlalchemy import update

    from services.posts.graph.models import FollowNotice
    from shared.db import utcnow
    from shared.testing import outbox_events
    ana, bo = await make_person(), await make_person()
    for _ in range(3):
        assert (await client.post(f"/api/v1/people/{bo.id}/follow", headers=auth(ana))).status_code == 201
        assert (await client.delete(f"/api/v1/people/{bo.id}/follow", headers=auth(ana))).status_code == 204
    created = await outbox_events(session, type="hearth.follow.created")
    assert [e.data["quiet"] for e in created] == [False, True, True]  # followed each time, notified once
    await session.execute(update(FollowNotice).values(notified_at=utcnow() - timedelta(days=1, minutes=1)))
    await session.commit()
    assert (await client.post(f"/api/v1/people/{bo.id}/follow", headers=auth(ana))).status_code == 201
    assert (await outbox_events(session, type="hearth.follow.created"))[-1].data["quiet"] is False


async def test_lifting_protection_approves_any_number_of_requests_in_the_same_statements(
        client, session, make_person, auth, statements):
    sent = []
    for pending in (2, 6):
        owner = await make_person(protected=True)
        fans = [await make_person() for _ in range(pending)]
        for fan in fans:
            assert (await client.post(f"/api/v1/people/{owner.id}/follow", headers=auth(fan))).status_code == 202
        with statements() as seen:
            lifted = await client.patch("/api/v1/people/me", headers=auth(owner), json={"protected": False})
        assert lifted.status_code == 200
        # person updated (add_event: pg_notify inside its INSERT), follows created (add_events: one NOTIFY)
        assert sum(s.lstrip().upper().startswith("NOTIFY") or "pg_notify" in s for s in seen) == 2
        sent.append(len(seen))
        created = [e.payload() for e in await outbox_events(session, type="hearth.follow.created")
                   if e.subject == str(owner.id)]
        assert sorted(e.follower_id for e in created) == sorted(f.id for f in fans)
        assert all(e.via_request and not e.quiet for e in created)
    assert sent[0] == sent[1]  # no statement per request
