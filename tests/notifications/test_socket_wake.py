"""Waking the notification sockets: at once after the commit on this replica, by the fan-out elsewhere."""

from types import SimpleNamespace

from uuid6 import uuid7

from services.notifications.inbox.service import LOCAL_WAKE, Source, notify
from services.notifications.realtime.runtime import wake_recipients
from shared.events import Envelope, PraiseGiven
from shared.testing import outbox_events


async def test_delivery_events_this_replica_woke_for_at_commit_do_not_wake_it_again(sessionmaker, session):
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
    deliver = wake_recipients(SimpleNamespace(wake=woken.append), dict.fromkeys(ids))
    await deliver(delivered)  # back through the fan-out: this replica woke them already
    assert woken == []
    await deliver(delivered)  # a redelivery (or another replica's event) wakes as usual
    assert woken == [[ana]]
