"""The socket's one-query prefetch answers each connection's catch-up exactly as the database would."""

from types import SimpleNamespace

from uuid6 import uuid7

from services.notifications.db import frames
from services.notifications.realtime.runtime import FramePrefetch


class FakeHub:
    def __init__(self, sent: dict):
        self.sent = sent

    def local(self, person):
        return [SimpleNamespace(sent_seq=self.sent[person])] if person in self.sent else []


async def test_prefetch_matches_the_database_and_falls_back_when_it_cannot(sessionmaker, session):
    ana, bob, away = uuid7(), uuid7(), uuid7()
    for n in range(3):
        await frames.append(session, recipients=[ana, bob, away], kind="notification", data={"n": n})
    await session.flush()
    prefetch = FramePrefetch(frames)
    await prefetch.prime(sessionmaker, FakeHub({ana: 1, bob: 0}), [ana, bob, away])
    assert set(prefetch.entries) == {ana, bob}  # only people connected here
    for person, after in ((ana, 1), (ana, 2), (bob, 0), (bob, 3)):
        assert await prefetch.read(session, person_id=person, after=after) == \
            await frames.read(session, person_id=person, after=after)
    assert [f["seq"] for f in await prefetch.read(session, person_id=ana, after=0)] == [1, 2, 3]  # from the database
    await frames.append(session, recipients=[ana], kind="notification", data={"n": 3})
    prefetch.forget(ana)  # (re)connected: the next read goes to the database and sees the new frame
    assert [f["seq"] for f in await prefetch.read(session, person_id=ana, after=1)] == [2, 3, 4]
    stale = FramePrefetch(frames, ttl=0.0)
    await stale.prime(sessionmaker, FakeHub({bob: 0}), [bob])
    await frames.append(session, recipients=[bob], kind="notification", data={"n": 3})
    assert [f["seq"] for f in await stale.read(session, person_id=bob, after=0)] == [1, 2, 3, 4]


async def test_delivery_events_this_replica_woke_for_at_commit_do_not_wake_it_again(sessionmaker, session):
    from services.notifications.inbox.service import LOCAL_WAKE, Source, notify
    from services.notifications.realtime.runtime import wake_recipients
    from shared.events import Envelope, PraiseGiven
    from shared.testing import outbox_events

    ana, author = uuid7(), uuid7()
    payload = PraiseGiven(post_id=uuid7(), author_id=author, recipients=[ana])
    calls = []
    async with sessionmaker() as s:
        s.info[LOCAL_WAKE] = lambda people, ids: calls.append((people, ids))
        await notify(s, Envelope.wrap(payload, source="posts", subject=payload.post_id),
                     Source(kind="praise", actor_id=author, subject_type="post", subject_id=payload.post_id),
                     recipients=[ana])
        assert calls == []  # not before the commit
        await s.commit()
    [(people, ids)] = calls
    [delivered] = await outbox_events(session, type="hearth.notification.delivered")
    assert people == [ana] and ids == [delivered.id]
    woken = []
    hub = SimpleNamespace(wake=woken.append, local=lambda person: [])
    deliver = wake_recipients(hub, FramePrefetch(frames), sessionmaker, dict.fromkeys(ids))
    await deliver(delivered)  # back through the fan-out: this replica woke them already
    assert woken == []
    await deliver(delivered)  # a redelivery (or another replica's event) wakes as usual
    assert woken == [[ana]]
