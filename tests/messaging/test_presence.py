"""Presence rows per replica (services/messaging/realtime/presence.py): the best status across replicas wins."""

from uuid6 import uuid7

from services.messaging.realtime import presence
from shared.testing import outbox_events


async def test_a_person_is_as_present_as_their_best_replica_and_changes_are_announced(session):
    ana, ben, nobody = uuid7(), uuid7(), uuid7()
    a, b = uuid7(), uuid7()  # two replicas
    assert await presence.apply(session, replica_id=a, local={ana: "online", ben: "away"}) == {
        ana: "online", ben: "away"}
    assert await presence.apply(session, replica_id=b, local={ben: "online"}) == {ben: "online"}
    assert await presence.apply(session, replica_id=b, local={ben: "offline"}) == {ben: "away"}  # a still has ben
    await presence.touch(session, replica_id=a, person_ids=[ana, ben])
    assert await presence.statuses(session, [ana, ben, nobody]) == {ana: "online", ben: "away", nobody: "offline"}
    assert await presence.apply(session, replica_id=a, local={ana: "offline", ben: "offline"}) == {
        ana: "offline", ben: "offline"}
    events = [(e.data["person_id"], e.data["status"]) for e in await outbox_events(session, type="hearth.presence.changed")]
    assert sorted(events[-2:]) == sorted([(str(ana), "offline"), (str(ben), "offline")])
