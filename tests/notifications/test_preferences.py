from datetime import datetime, time, timezone

from uuid6 import uuid7

from services.notifications.preferences.models import PersonSettings
from services.notifications.preferences.service import quiet_until
from shared.db import utcnow
from shared.events import PostCreated
from tests.notifications.builders import inbox, send


def mention(author, person):
    return PostCreated(post_id=uuid7(), author_id=author, kind="update", audience="company", excerpt="hi",
                       mentions=[person], created_at=utcnow())


async def test_defaults_are_filled_in_and_a_kind_can_be_switched_off(settings, sessionmaker, client, keys):
    ana = uuid7()
    prefs = (await client.get("/api/v1/notifications/preferences", headers=keys.headers(ana))).json()
    assert prefs["kinds"]["mention"] == {"in_app": True, "push": True, "email": True}
    assert prefs["kinds"]["reaction"]["push"] is False and prefs["digest"] == "weekly"
    assert prefs["kinds"]["comment_reaction"] == {"in_app": True, "push": False, "email": False}
    changed = await client.put("/api/v1/notifications/preferences/kinds/mention", headers=keys.headers(ana),
                               json={"in_app": False, "push": False, "email": True})
    assert changed.status_code == 200 and changed.json()["kinds"]["mention"]["in_app"] is False
    await send(settings, sessionmaker, mention(uuid7(), ana))
    assert await inbox(client, keys, ana) == []
    someone_else = uuid7()
    await send(settings, sessionmaker, mention(uuid7(), someone_else))
    assert len(await inbox(client, keys, someone_else)) == 1  # one person's choice is not everyone's


async def test_settings_validate_zone_quiet_hours_and_digest(client, keys):
    headers = keys.headers(uuid7())
    ok = await client.patch("/api/v1/notifications/preferences", headers=headers,
                            json={"time_zone": "Europe/Paris", "quiet_start": "22:00", "quiet_end": "07:00",
                                  "digest": "daily"})
    assert ok.status_code == 200
    assert ok.json() | {"kinds": None} == {"kinds": None, "time_zone": "Europe/Paris", "quiet_start": "22:00:00",
                                           "quiet_end": "07:00:00", "digest": "daily"}
    for bad in ({"time_zone": "Mars/Olympus"}, {"quiet_start": "22:00"}, {"digest": "hourly"}, {"nope": 1},
                {"time_zone": "x" * 65}):
        response = await client.patch("/api/v1/notifications/preferences", headers=headers, json=bad)
        assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    assert (await client.put("/api/v1/notifications/preferences/kinds/nonsense", headers=headers,
                             json={"in_app": True, "push": True, "email": True})).status_code == 422
    assert (await client.put("/api/v1/notifications/mutes/planet/" + str(uuid7()), headers=headers)).status_code == 422


async def test_mutes_are_listed_per_person(client, keys):
    ana, bob, target = uuid7(), uuid7(), uuid7()
    assert (await client.put(f"/api/v1/notifications/mutes/conversation/{target}",
                             headers=keys.headers(ana))).status_code == 204
    assert (await client.get("/api/v1/notifications/mutes", headers=keys.headers(ana))).json() == [
        {"target_type": "conversation", "target_id": str(target)}]
    assert (await client.get("/api/v1/notifications/mutes", headers=keys.headers(bob))).json() == []


def test_quiet_hours_follow_the_persons_time_zone_and_wrap_midnight():
    paris = PersonSettings(person_id=uuid7(), time_zone="Europe/Paris", quiet_start=time(22), quiet_end=time(7))
    late = datetime(2026, 11, 25, 22, 30, tzinfo=timezone.utc)  # 23:30 in Paris
    until = quiet_until(paris, late)
    assert until is not None and until.astimezone(timezone.utc) == datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)
    assert quiet_until(paris, datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)) is None
    early = quiet_until(paris, datetime(2026, 11, 25, 5, 0, tzinfo=timezone.utc))  # 06:00 in Paris
    assert early.astimezone(timezone.utc) == datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
    assert quiet_until(PersonSettings(person_id=uuid7()), late) is None


async def test_a_null_time_zone_or_digest_is_refused_not_stored(client, keys):
    from uuid6 import uuid7
    headers = keys.headers(uuid7())
    for body in ({"time_zone": None}, {"digest": None}):
        response = await client.patch("/api/v1/notifications/preferences", headers=headers, json=body)
        assert response.status_code == 422, (body, response.text)
