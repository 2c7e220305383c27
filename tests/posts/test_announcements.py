import asyncio
from datetime import UTC, datetime, timedelta

from services.posts.content import announcements
from shared.testing import outbox_events
from tests.posts.content_helpers import invite_in, make_group, publish, secret_post
from tests.posts.test_attachments import storage_at, uploads  # noqa: F401  (storage_at is a fixture)

SOON = (datetime.now(UTC) + timedelta(days=3)).isoformat()


async def must_read(client, headers, **extra):
    return await publish(client, headers, kind="announcement", body="New security policy", must_read=True, **extra)


async def test_who_may_announce(client, make_person, auth):
    member, comms, admin = await make_person(), await make_person(roles=["communications"]), await make_person()
    assert (await client.post("/api/v1/posts", headers=auth(member),
                              json={"kind": "announcement", "body": "x"})).status_code == 403
    assert (await client.post("/api/v1/posts", headers=auth(comms),
                              json={"kind": "announcement", "body": "x", "pinned_until": SOON})).status_code == 201
    plain = await make_group(client, auth(admin), "public")  # its owner, but the group is not official
    in_plain = await client.post("/api/v1/posts", headers=auth(admin),
                                 json={"kind": "announcement", "body": "x", "group_id": plain})
    assert in_plain.status_code == 403 and in_plain.json()["code"] == "announcement-not-allowed"
    not_announcement = await client.post("/api/v1/posts", headers=auth(comms),
                                         json={"kind": "update", "body": "x", "pinned_until": SOON})
    assert not_announcement.status_code == 422


async def test_official_group_admins_announce_in_their_group(client, make_person, auth):
    company_admin, group_admin = await make_person(roles=["admin"]), await make_person()
    official = await make_group(client, auth(company_admin), "public", official=True)
    await invite_in(client, auth, company_admin, official, group_admin)
    promoted = await client.patch(f"/api/v1/groups/{official}/members/{group_admin.id}", headers=auth(company_admin),
                                  json={"role": "admin"})
    assert promoted.status_code == 200, promoted.text
    response = await client.post("/api/v1/posts", headers=auth(group_admin),
                                 json={"kind": "announcement", "body": "x", "group_id": official})
    assert response.status_code == 201, response.text


async def test_acknowledgement_lists_rates_and_reacknowledgement(client, session, make_person, auth):
    comms = await make_person(roles=["communications"], department="Comms", location="Lisbon")
    eng1 = await make_person(department="Engineering", location="Lisbon")
    eng2 = await make_person(department="Engineering", location="Berlin")
    sales = await make_person(department="Sales", location="Berlin")
    post = await must_read(client, auth(comms))
    assert post["acknowledged"] is False
    ack = await client.post(f"/api/v1/posts/{post['id']}/acknowledge", headers=auth(eng1))
    assert ack.status_code == 200 and ack.json() == {"post_id": post["id"], "version": 1, "acknowledged": True}
    assert (await client.post(f"/api/v1/posts/{post['id']}/acknowledge", headers=auth(eng1))).status_code == 200
    assert len(await outbox_events(session, type="hearth.announcement.acknowledged")) == 1
    await client.post(f"/api/v1/posts/{post['id']}/acknowledge", headers=auth(sales))
    summary = (await client.get(f"/api/v1/posts/{post['id']}/acknowledgements/summary", headers=auth(comms))).json()
    assert (summary["audience"], summary["acknowledged"]) == (3, 2)  # the author is not in the audience
    assert {d["value"]: (d["audience"], d["acknowledged"]) for d in summary["by_department"]} == {
        "Engineering": (2, 1), "Sales": (1, 1)}
    assert {d["value"]: d["rate"] for d in summary["by_location"]} == {"Berlin": 0.5, "Lisbon": 1.0}
    pending = (await client.get(f"/api/v1/posts/{post['id']}/acknowledgements?state=pending",
                                headers=auth(comms))).json()
    assert [p["person"]["id"] for p in pending["items"]] == [str(eng2.id)]
    done = (await client.get(f"/api/v1/posts/{post['id']}/acknowledgements", headers=auth(comms))).json()
    assert sorted(p["person"]["id"] for p in done["items"]) == sorted([str(eng1.id), str(sales.id)])
    assert all(p["acknowledged_at"] for p in done["items"])
    # an edit that asks again: earlier acknowledgements no longer count
    edited = await client.patch(f"/api/v1/posts/{post['id']}", headers=auth(comms),
                                json={"body": "New security policy, v2", "require_reacknowledgement": True})
    assert edited.json()["ack_version"] == 2
    [updated] = await outbox_events(session, type="hearth.post.updated")
    assert updated.payload().requires_acknowledgement is True
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=auth(eng1))).json()["acknowledged"] is False
    again = await client.post(f"/api/v1/posts/{post['id']}/acknowledge", headers=auth(eng1))
    assert again.json()["version"] == 2
    summary = (await client.get(f"/api/v1/posts/{post['id']}/acknowledgements/summary", headers=auth(comms))).json()
    assert (summary["version"], summary["acknowledged"]) == (2, 1)


async def test_acknowledgements_are_for_the_author_and_communications(client, make_person, auth):
    author, reader = await make_person(roles=["communications"]), await make_person()
    post = await must_read(client, auth(author))
    for path in ["acknowledgements", "acknowledgements/summary"]:
        response = await client.get(f"/api/v1/posts/{post['id']}/{path}", headers=auth(reader))
        assert response.status_code == 403 and response.json()["code"] == "not-announcement-manager"
    assert (await client.post(f"/api/v1/posts/{post['id']}/reminders", headers=auth(reader))).status_code == 403
    plain = await publish(client, auth(author))
    response = await client.post(f"/api/v1/posts/{plain['id']}/acknowledge", headers=auth(reader))
    assert response.status_code == 409 and response.json()["code"] == "not-must-read"


async def test_group_announcement_audience_is_the_group(client, make_person, auth):
    comms, insider, outsider = await make_person(roles=["communications"]), await make_person(), await make_person()
    group_id = await make_group(client, auth(comms), "private")
    await invite_in(client, auth, comms, group_id, insider)
    post = await must_read(client, auth(comms), group_id=group_id)
    summary = (await client.get(f"/api/v1/posts/{post['id']}/acknowledgements/summary", headers=auth(comms))).json()
    assert summary["audience"] == 1
    assert (await client.post(f"/api/v1/posts/{post['id']}/acknowledge", headers=auth(outsider))).status_code == 404


async def test_reminders_go_to_who_has_not_acknowledged(client, session, make_person, auth):
    comms, done, late = await make_person(roles=["communications"]), await make_person(), await make_person()
    post = await must_read(client, auth(comms))
    await client.post(f"/api/v1/posts/{post['id']}/acknowledge", headers=auth(done))
    response = await client.post(f"/api/v1/posts/{post['id']}/reminders", headers=auth(comms))
    assert response.json() == {"reminded": 1}
    [event] = await outbox_events(session, type="hearth.announcement.reminder_due")
    assert event.payload().person_ids == [late.id] and event.payload().version == 1


async def test_scheduled_reminders_are_sent_once_when_due(client, session, make_person, auth):
    comms, late = await make_person(roles=["communications"]), await make_person()
    remind_at = datetime.now(UTC) + timedelta(hours=2)
    await must_read(client, auth(comms), remind_at=remind_at.isoformat())
    assert await announcements.send_due_reminders(session, now=remind_at - timedelta(minutes=1)) == 0
    assert await announcements.send_due_reminders(session, now=remind_at + timedelta(minutes=1)) == 1
    assert await announcements.send_due_reminders(session, now=remind_at + timedelta(minutes=2)) == 0
    [event] = await outbox_events(session, type="hearth.announcement.reminder_due")
    assert event.payload().person_ids == [late.id]


async def test_secret_announcement_endpoints_are_404_to_outsiders(client, make_person, auth):
    author, outsider, post = await secret_post(client, auth, make_person)
    for method, path in [("post", "acknowledge"), ("get", "acknowledgements"), ("get", "acknowledgements/summary"),
                         ("post", "reminders")]:
        response = await getattr(client, method)(f"/api/v1/posts/{post['id']}/{path}", headers=auth(outsider))
        assert response.status_code == 404, path


async def test_the_reminder_worker_sends_what_is_due_and_stops_when_asked(client, session, sessionmaker, make_person,
                                                                          auth):
    comms, late = await make_person(roles=["communications"]), await make_person()
    await must_read(client, auth(comms), remind_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    stop = asyncio.Event()

    def sessions():
        stop.set()  # one round, then the worker's sleep returns at once
        return sessionmaker()

    await asyncio.wait_for(announcements.reminder_worker(sessions, interval=60)(stop), timeout=30)
    [event] = await outbox_events(session, type="hearth.announcement.reminder_due")
    assert event.payload().person_ids == [late.id]


async def test_post_created_says_whether_an_announcement_is_must_read(client, session, make_person, auth):
    comms = await make_person(roles=["communications"])
    required = await must_read(client, auth(comms))
    optional = await publish(client, auth(comms), kind="announcement", body="Office closed Friday")
    update = await publish(client, auth(comms), body="Just an update")
    flags = {str(e.subject): e.payload().must_read for e in await outbox_events(session, type="hearth.post.created")}
    assert flags == {required["id"]: True, optional["id"]: False, update["id"]: False}


async def test_changing_a_must_reads_attachments_asks_again_only_when_the_author_says_so(client, session,
                                                                                        make_person, auth,
                                                                                        storage_at):
    """The rule a text edit follows: acknowledgements stand unless the edit requires acknowledging again."""
    comms, reader = await make_person(roles=["communications"]), await make_person()
    v1, fixed, v2 = await uploads(client, auth(comms), "v1", "fixed", "v2")
    post = await must_read(client, auth(comms), attachment_ids=[v1])
    await client.post(f"/api/v1/posts/{post['id']}/acknowledge", headers=auth(reader))
    url = f"/api/v1/posts/{post['id']}"
    quiet = await client.patch(url, headers=auth(comms), json={"attachment_ids": [fixed]})
    assert (quiet.json()["version"], quiet.json()["ack_version"]) == (2, 1)
    assert (await client.get(url, headers=auth(reader))).json()["acknowledged"] is True
    asked = await client.patch(url, headers=auth(comms), json={"attachment_ids": [v2],
                                                                "require_reacknowledgement": True})
    assert (asked.json()["version"], asked.json()["ack_version"]) == (3, 3)
    assert (await client.get(url, headers=auth(reader))).json()["acknowledged"] is False
    events = [e.payload() for e in await outbox_events(session, type="hearth.post.updated")]
    assert [(e.changed, e.requires_acknowledgement) for e in events] == [
        (["attachment_ids"], False), (["attachment_ids"], True)]
    # asking again with nothing else changed is still an edit (a new acknowledgement round)
    again = await client.patch(url, headers=auth(comms), json={"require_reacknowledgement": True})
    assert (again.json()["version"], again.json()["ack_version"]) == (4, 4)
