from pathlib import Path

import pytest
from uuid6 import uuid7

from shared.events import Envelope, UnknownEventType
from shared.events.catalog import render
from tests.events import post_created

CATALOG = Path(__file__).resolve().parents[2] / "docs" / "events.asyncapi.json"


def test_envelope_round_trips_with_typed_payload():
    author, maria = uuid7(), uuid7()
    event = post_created(author, [maria])
    decoded = Envelope.from_bytes(event.to_bytes())
    assert decoded == event
    assert decoded.payload().mentions == [maria]
    assert decoded.specversion == "1.0" and decoded.source == "posts" and decoded.client == "web"


def test_unknown_event_type_is_reported_not_guessed():
    event = post_created(uuid7()).model_copy(update={"type": "hearth.thing.exploded"})
    with pytest.raises(UnknownEventType):
        event.payload()


def test_committed_catalogue_matches_the_models():
    assert CATALOG.read_text() == render(), "run `make events-doc` and commit docs/events.asyncapi.json"


def test_catalogue_lists_every_type_on_its_topic():
    import json
    doc = json.loads(render())
    social = set(doc["channels"]["social.v1"]["messages"])
    assert {"hearth.post.created", "hearth.follow.created", "hearth.group.member_added"} <= social
    assert "hearth.person.created" not in social and "hearth.person.created" in doc["channels"]["people.v1"]["messages"]
    assert "PostCreated" in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["PostCreated"]["properties"]["type"]["const"] == "hearth.post.created"
