"""What an event means for the metrics, read from the envelope (type, actor, time, client, subject)
and the few payload fields every content event carries (`post_id`, ids of comments, queries).

Every event type is logged; this decides which ones make a person active (DESIGN §6: viewed, read,
posted, commented, reacted, voted, acknowledged, sent a message, searched) and which ones make a
contributor (posted, commented, reacted, answered, sent a message). Signing in, refreshing a token,
a notification being delivered, follows and group changes are logged but make nobody active.
Types are matched by name so that payload modules other engineers add are handled as they land.
"""

from dataclasses import dataclass
from functools import lru_cache
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import msgspec
from msgspec import UNSET
from pydantic_core import to_json

from shared.events import RawEnvelope

VIEW, READ, POST, COMMENT, REACTION, VOTE, ACK, MESSAGE, SEARCH, ANSWER = (
    "view", "read", "post", "comment", "reaction", "vote", "ack", "message", "search", "answer")
CONTRIBUTIONS = frozenset({POST, COMMENT, REACTION, MESSAGE, ANSWER})

# Exact names first (without the `hearth.` prefix); the suffix rules below catch new names.
KNOWN: dict[str, str] = {
    "post.created": POST, "post.viewed": VIEW, "posts.viewed": VIEW,
    "comment.created": COMMENT, "comment.added": COMMENT, "reply.created": COMMENT,
    "reaction.added": REACTION, "reaction.created": REACTION, "post.reacted": REACTION,
    "comment.reaction.added": REACTION, "comment.reaction_added": REACTION,  # the latter is what posts sends
    "poll.voted": VOTE, "vote.cast": VOTE, "post.voted": VOTE,
    "announcement.acknowledged": ACK, "post.acknowledged": ACK, "acknowledgement.created": ACK,
    "search.performed": SEARCH,
    "message.sent": MESSAGE, "message.created": MESSAGE,
    "notification.read": READ, "notifications.read": READ, "conversation.read": READ, "message.read": READ,
    "answer.created": ANSWER, "answer.accepted": None, "question.answer_accepted": None,
    "message.reaction_added": REACTION, "praise.given": None,  # praise arrives as a post too
    "conversation.typing": None, "presence.changed": None, "post.bookmarked": None,
}
NOT_ACTIVITY_WORDS = ("deleted", "removed", "edited", "updated", "delivered", "revoked", "signed_in", "refreshed")


@lru_cache(maxsize=1024)  # a few dozen type names: classified once each
def kind_of(event_type: str) -> str | None:
    """The activity kind of an event type, or None when it does not make anyone active."""
    name = event_type.removeprefix("hearth.")
    if name in KNOWN:
        return KNOWN[name]
    if any(word in name for word in NOT_ACTIVITY_WORDS):
        return None
    for suffix, kind in ((".viewed", VIEW), (".read", READ), (".acknowledged", ACK), (".voted", VOTE),
                         ("search.performed", SEARCH)):
        if name.endswith(suffix):
            return kind
    return None


@lru_cache(maxsize=1024)
def client_of(client: str | None) -> str:
    """web | ios | android | api | other | unknown (X-Hearth-Client is `web`, `api/<name>`, …)."""
    if not client:
        return "unknown"
    head = client.split("/", 1)[0].strip().lower()
    return head if head in ("web", "ios", "android", "api") else "other"


def as_uuid(value: Any) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    return parse_uuid(value if isinstance(value, str) else str(value))


@lru_cache(maxsize=1 << 16)  # the same people and recent posts come back in every batch
def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


PERSON_KEYS = ("person_id", "viewer_id", "author_id", "sender_id", "user_id", "recipient_id")


class Facts(msgspec.Struct, gc=False):
    """The payload fields the rollups read; the decoder skips every other field without building it.

    UNSET is "not in the payload" (a field present with null is None: `person_id: null` names nobody,
    and the person is not looked for in the next fields)."""

    post_id: Any = UNSET
    post_ids: Any = UNSET
    person_id: Any = UNSET
    viewer_id: Any = UNSET
    author_id: Any = UNSET
    sender_id: Any = UNSET
    user_id: Any = UNSET
    recipient_id: Any = UNSET
    comment_id: Any = UNSET
    group_id: Any = UNSET
    kind: Any = UNSET
    audience: Any = UNSET
    previous_kind: Any = UNSET
    query: Any = UNSET
    q: Any = UNSET
    result_count: Any = UNSET
    results_count: Any = UNSET
    total: Any = UNSET
    results: Any = UNSET

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self, name)
        return default if value is UNSET else value

    def has(self, name: str) -> bool:
        return getattr(self, name) is not UNSET


FACTS = msgspec.json.Decoder(Facts)


@dataclass(frozen=True, slots=True)
class Event:
    """The envelope fields the rollups read (from an Envelope, a RawEnvelope or an event log row)."""

    id: UUID
    type: str
    time: datetime
    actor: UUID | None
    client: str | None
    subject: str
    facts: Facts
    data_json: bytes | None = None  # the payload's JSON text, as the log stores it (None: already logged)
    data: dict[str, Any] | None = None  # the whole payload, when it was decoded

    @classmethod
    def of(cls, envelope) -> "Event":
        """From a RawEnvelope (the payload decoded only for the facts) or an Envelope (payload already a dict)."""
        if isinstance(envelope, RawEnvelope):
            raw = envelope.data_json
            return cls(envelope.id, envelope.type, envelope.time, envelope.actor, envelope.client, envelope.subject,
                       FACTS.decode(raw), raw)
        return cls.from_row(envelope.id, envelope.type, envelope.time, envelope.actor, envelope.client,
                            envelope.subject, envelope.data, to_json(envelope.data))

    @classmethod
    def from_row(cls, event_id: UUID, type_: str, time: datetime, actor: UUID | None, client: str | None,
                 subject: str, data: dict[str, Any], data_json: bytes | None = None) -> "Event":
        return cls(event_id, type_, time, actor, client, subject, msgspec.convert(data, Facts), data_json, data)

    def payload(self) -> dict[str, Any]:
        """The whole payload (people and group events read all of it)."""
        if self.data is not None:
            return self.data
        return msgspec.json.decode(self.data_json) if self.data_json is not None else {}

    @property
    def day(self) -> date:
        return utc_day(self.time)

    @property
    def person(self) -> UUID | None:
        """Who acted: the envelope's actor, else the payload's person fields."""
        if self.actor is not None:
            return self.actor
        facts = self.facts
        for key in PERSON_KEYS:
            value = getattr(facts, key)
            if value is not UNSET:
                return as_uuid(value)
        return None

    def post_ids(self) -> list[UUID]:
        facts = self.facts
        if facts.post_ids is not UNSET:
            return [p for p in map(as_uuid, facts.post_ids or []) if p is not None]
        post = as_uuid(facts.get("post_id"))
        if post is None and self.type.removeprefix("hearth.").startswith("post."):
            post = as_uuid(self.subject)
        return [post] if post is not None else []


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
