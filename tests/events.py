"""Builders for events as another service would have published them."""

from uuid import UUID

from uuid6 import uuid7

from shared.db import utcnow
from shared.events import Envelope, PersonCreated, PersonSnapshot, PostCreated


def post_created(author: UUID, mentions: list[UUID] = (), **fields) -> Envelope:
    post_id = fields.pop("post_id", uuid7())
    payload = PostCreated(post_id=post_id, author_id=author, kind="update", audience="company", excerpt="hello",
                          mentions=list(mentions), created_at=utcnow(), **fields)
    return Envelope.wrap(payload, source="posts", subject=post_id, actor=author, client="web")


def person_created(**fields) -> Envelope:
    person = PersonSnapshot(**({"id": uuid7(), "email": "p@corp.local", "display_name": "P", "updated_at": utcnow()}
                               | fields))
    return Envelope.wrap(PersonCreated(person=person), source="posts", subject=person.id)
