"""Events as the other services publish them, for any type (including types still being defined)."""

from datetime import UTC, date, datetime
from uuid import UUID

from uuid6 import uuid7

from shared.events import Envelope


def at(text: str) -> datetime:
    """`2026-11-02T05:00` (UTC) -> an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(type_: str, *, actor: UUID | None, time: datetime, subject=None, client: str | None = "web",
          **data) -> Envelope:
    data = {k: (str(v) if isinstance(v, UUID) else v) for k, v in data.items()}
    return Envelope(type=f"hearth.{type_}", source="test", subject=str(subject or uuid7()), actor=actor,
                    client=client, time=time, dataschema=f"hearth.{type_}/1", data=data)


def person(person_id: UUID, *, time: datetime, kind: str = "created", department: str | None = None,
           location: str | None = None, official: bool = False, leader: bool = False, active: bool = True,
           hire_date: date | None = None, manager_id: UUID | None = None, name: str | None = None) -> Envelope:
    snapshot = {"id": str(person_id), "email": f"{person_id}@corp.local", "display_name": name or str(person_id)[:8],
                "department": department, "location": location, "official": official, "leader": leader,
                "active": active, "hire_date": hire_date.isoformat() if hire_date else None,
                "manager_id": str(manager_id) if manager_id else None, "updated_at": time.isoformat()}
    return event(f"person.{kind}", actor=None, time=time, subject=person_id, person=snapshot)


def post(author: UUID, post_id: UUID, *, time: datetime, kind: str = "update", group_id: UUID | None = None,
         client: str = "web") -> Envelope:
    return event("post.created", actor=author, time=time, subject=post_id, client=client, post_id=post_id,
                 author_id=author, kind=kind, audience="group" if group_id else "company",
                 group_id=str(group_id) if group_id else None, excerpt="x", created_at=time.isoformat())


def view(viewer: UUID, post_id: UUID, *, time: datetime, client: str = "web") -> Envelope:
    return event("post.viewed", actor=viewer, time=time, subject=post_id, client=client, post_id=post_id)


def comment(author: UUID, post_id: UUID, *, time: datetime) -> Envelope:
    comment_id = uuid7()
    return event("comment.created", actor=author, time=time, subject=comment_id, comment_id=comment_id,
                 post_id=post_id, author_id=author)


def reaction(person_id: UUID, post_id: UUID, *, time: datetime) -> Envelope:
    return event("reaction.added", actor=person_id, time=time, subject=post_id, post_id=post_id, reaction="like")


def ack(person_id: UUID, post_id: UUID, *, time: datetime) -> Envelope:
    return event("post.acknowledged", actor=person_id, time=time, subject=post_id, post_id=post_id)


def search(person_id: UUID, query: str, results: int, *, time: datetime) -> Envelope:
    return event("search.performed", actor=person_id, time=time, query=query, type="posts", result_count=results)
