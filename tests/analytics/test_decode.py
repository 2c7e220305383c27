"""The consumer's fast decode (RawEnvelope) reads what Envelope reads, and refuses the rest to the careful path."""

import json
from datetime import UTC, datetime

import pytest
from uuid6 import uuid7

from services.analytics.ingest.classify import Event
from services.analytics.ingest.service import stage_row
from shared.events import Envelope, RawEnvelope
from tests.analytics import factories as f


def envelopes():
    post = uuid7()
    return [f.post(uuid7(), post, time=f.at("2026-11-02T05:00")), f.view(uuid7(), post, time=f.at("2026-11-02T06:00")),
            f.comment(uuid7(), post, time=f.at("2026-11-02T07:00")),
            f.event("reaction.added", actor=None, time=f.at("2026-11-02T08:00"), post_id=post, person_id=uuid7(),
                    previous_kind="like"),
            f.search(uuid7(), "  VPN  setup ", 0, time=f.at("2026-11-02T09:00")),
            f.event("search.performed", actor=uuid7(), time=f.at("2026-11-02T09:00"), q="x", results=[1, 2]),
            f.person(uuid7(), time=f.at("2026-11-01T00:00"), department="Eng")]


@pytest.mark.parametrize("envelope", envelopes(), ids=lambda e: e.type)
def test_the_fast_decode_gives_the_same_row_as_the_envelope(envelope):
    raw = envelope.to_bytes()
    slow, fast = Event.of(Envelope.from_bytes(raw)), Event.of(RawEnvelope.from_bytes(raw))
    a, b = stage_row(slow), stage_row(fast)
    assert a[:7] == b[:7] and a[8:] == b[8:] and json.loads(a[7]) == json.loads(b[7])
    assert fast.payload() == slow.payload()


@pytest.mark.parametrize("change", [{"data": [1]}, {"data": None}, {"id": None}, {"time": "2026-11-02"},
                                    {"subject": 5}, {"specversion": "2.0"}])
def test_the_fast_decode_refuses_what_it_might_read_differently(change):
    body = json.loads(f.view(uuid7(), uuid7(), time=datetime.now(UTC)).to_bytes()) | change
    body = {k: v for k, v in body.items() if v is not None or k == "data"}
    with pytest.raises(ValueError):
        RawEnvelope.from_bytes(json.dumps(body).encode())
