import re
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy import ARRAY, Uuid, any_, bindparam, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.posts.auth.passwords import hash_password_off_loop
from services.posts.auth.sessions import end_sessions
from services.posts.people.models import Person
from services.posts.people.schemas import PersonCreate, ProfileFields
from shared.db import utcnow
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import (
    PersonCreated,
    PersonDeactivated,
    PersonReactivated,
    PersonSnapshot,
    PersonUpdated,
)
from shared.outbox import add_event
from shared.pagination import PageParams, paginate

MAX_CHAIN = 50  # deepest management chain we walk; deeper means bad data, not a real company

# What the social code does when someone turns protection off (graph approves pending follow requests).
# Identity never imports the social code: the graph registers itself here instead.
ProtectionLifted = Callable[..., Awaitable[None]]
_PROTECTION_LIFTED: list[ProtectionLifted] = []


def on_protection_lifted(hook: ProtectionLifted) -> ProtectionLifted:
    """Decorator: run `hook(session, followee=person, actor=...)` in the transaction that lifts protection."""
    _PROTECTION_LIFTED.append(hook)
    return hook


def escape_like(text: str) -> str:
    """`text` matched literally inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class PersonNotFound(NotFound):
    code, title = "person-not-found", "Person not found"


class EmailTaken(Conflict):
    code, title = "email-taken", "Email already in use"


def snapshot(person: Person) -> PersonSnapshot:
    return PersonSnapshot.model_validate(person, from_attributes=True)


async def get(session: AsyncSession, *, person_id: UUID) -> Person | None:
    return await session.get(Person, person_id)


async def get_or_raise(session: AsyncSession, *, person_id: UUID) -> Person:
    person = await session.get(Person, person_id)
    if person is None:
        raise PersonNotFound()
    return person


async def get_active_or_raise(session: AsyncSession, *, person_id: UUID) -> Person:
    """A person who can be followed, invited or added; a deactivated one is as good as unknown."""
    person = await session.get(Person, person_id)
    if person is None or not person.active:
        raise PersonNotFound()
    return person


async def by_ids(session: AsyncSession, *, person_ids: list[UUID]) -> dict[UUID, Person]:
    """People by id in one query (for lists that show who is behind each row)."""
    if not person_ids:
        return {}
    return {p.id: p for p in await session.scalars(select(Person).where(Person.id.in_(person_ids)))}


async def activity(session: AsyncSession, *, person_ids: set[UUID]) -> dict[UUID, bool]:
    """Whether each of `person_ids` that is someone is active, in one query (unknown ids are left out)."""
    if not person_ids:
        return {}
    ids = bindparam(None, list(person_ids), type_=ARRAY(Uuid))  # one array parameter, however many ids
    return dict((await session.execute(select(Person.id, Person.active).where(Person.id == any_(ids)))).all())


async def get_by_email(session: AsyncSession, *, email: str) -> Person | None:
    return await session.scalar(select(Person).where(Person.email == email.strip().lower()))


async def _free_handle(session: AsyncSession, email: str) -> str:
    """A handle from the email's local part, suffixed with a number when taken."""
    base = re.sub(r"[^a-z0-9._-]", "", email.split("@")[0].lower())[:56] or "user"
    pattern = f"{escape_like(base)}%"
    taken = set(await session.scalars(select(Person.handle).where(Person.handle.like(pattern, escape="\\"))))
    if base not in taken:
        return base
    return next(f"{base}{n}" for n in range(2, len(taken) + 3) if f"{base}{n}" not in taken)


def _column_values(fields: dict[str, Any]) -> dict[str, Any]:
    values = dict(fields)
    if values.get("avatar_url") is not None:
        values["avatar_url"] = str(values["avatar_url"])
    if "roles" in values and values["roles"] is not None:
        values["roles"] = sorted(set(values["roles"]) | {"member"})
    if "skills" in values and values["skills"] is not None:
        values["skills"] = list(dict.fromkeys(s.strip() for s in values["skills"] if s.strip()))
    return values


async def create(session: AsyncSession, *, data: PersonCreate, actor: UUID | None) -> Person:
    """Create a person and announce them on people.v1."""
    email = data.email
    password_hash = await hash_password_off_loop(data.password) if data.password else None
    if await get_by_email(session, email=email) is not None:
        raise EmailTaken(f"{email} already belongs to someone.")
    if data.manager_id is not None:
        await get_or_raise(session, person_id=data.manager_id)
    if data.handle and await session.scalar(select(func.count()).where(Person.handle == data.handle)):
        raise Conflict(f"The handle {data.handle} is taken.", field="handle")
    fields = data.model_dump(exclude={"handle", "password", "protected"}, exclude_none=True)
    person = Person(**_column_values(fields), handle=data.handle or await _free_handle(session, email),
                    protected=bool(data.protected),
                    password_hash=password_hash)
    session.add(person)
    try:
        await session.flush()
    except IntegrityError:
        raise EmailTaken(f"{email} already belongs to someone.")
    await add_event(session, PersonCreated(person=snapshot(person)), subject=person.id, actor=actor)
    return person


async def _check_manager(session: AsyncSession, person: Person, manager_id: UUID | None) -> None:
    """The manager exists and is not the person or one of their reports (no cycles in the org chart)."""
    if manager_id is None:
        return
    manager = await get_or_raise(session, person_id=manager_id)
    chain = [manager] + await management_chain(session, person=manager)
    if any(m.id == person.id for m in chain):
        raise InvalidInput("A person cannot report to themselves or to one of their reports.", field="manager_id")


async def update(session: AsyncSession, *, person: Person, changes: ProfileFields | dict, actor: UUID | None) -> Person:
    """Apply profile changes (already authorized) and publish the new snapshot with what changed."""
    fields = changes.model_dump(exclude_unset=True) if isinstance(changes, ProfileFields) else dict(changes)
    values = _column_values(fields)
    if "email" in values and values["email"] != person.email:
        if values["email"] is None or await get_by_email(session, email=values["email"]) is not None:
            raise EmailTaken(f"{values['email']} already belongs to someone.")
    if "manager_id" in values and values["manager_id"] != person.manager_id:
        await _check_manager(session, person, values["manager_id"])
    for required in ("display_name", "email"):
        if required in values and values[required] is None:
            raise InvalidInput(f"{required} cannot be empty.", field=required)
    changed = sorted(k for k, v in values.items() if getattr(person, k) != v)
    if "protected" in changed and not values["protected"]:
        for hook in _PROTECTION_LIFTED:
            await hook(session, followee=person, actor=actor)
    for key in changed:
        setattr(person, key, values[key])
    if changed:
        person.updated_at = utcnow()
        await session.flush()
        await add_event(session, PersonUpdated(person=snapshot(person), changed=changed), subject=person.id,
                        actor=actor)
    return person


async def set_password(session: AsyncSession, *, person: Person, password: str) -> None:
    if len(password) < 8:
        raise InvalidInput("A password needs at least 8 characters.", field="password")
    person.password_hash = await hash_password_off_loop(password)
    await _revoke_sessions(session, person.id)  # a new password ends every other sign-in


async def deactivate(session: AsyncSession, *, person: Person, actor: UUID | None) -> Person:
    """Stop sign-in and refresh at once and tell the other services to hide the person."""
    if person.active:
        person.active = False
        person.updated_at = utcnow()
        await _revoke_sessions(session, person.id)
        await session.flush()
        await add_event(session, PersonDeactivated(person=snapshot(person)), subject=person.id, actor=actor)
    return person


async def reactivate(session: AsyncSession, *, person: Person, actor: UUID | None) -> Person:
    if not person.active:
        person.active = True
        person.updated_at = utcnow()
        await session.flush()
        await add_event(session, PersonReactivated(person=snapshot(person)), subject=person.id, actor=actor)
    return person


async def _revoke_sessions(session: AsyncSession, person_id: UUID) -> None:
    await end_sessions(session, person_id=person_id)


async def get_all(session: AsyncSession, *, page: PageParams, department: str | None = None,
                  location: str | None = None, skill: str | None = None, q: str | None = None,
                  include_inactive: bool = False):
    """The directory, by name; filters combine."""
    stmt = select(Person)
    if not include_inactive:
        stmt = stmt.where(Person.active.is_(True))
    if department:
        stmt = stmt.where(func.lower(Person.department) == department.lower())
    if location:
        stmt = stmt.where(func.lower(Person.location) == location.lower())
    if skill:
        # Case-insensitive exact skill: "python" finds "Python", not "Pythonista".
        stmt = stmt.where(text("EXISTS (SELECT 1 FROM unnest(people.skills) AS s WHERE lower(s) = :skill)")
                          .bindparams(skill=skill.lower()))
    if q:
        like = f"%{escape_like(q.lower())}%"
        stmt = stmt.where(or_(func.lower(Person.display_name).like(like, escape="\\"),
                              Person.handle.like(like, escape="\\"), Person.email.like(like, escape="\\")))
    return await paginate(session, stmt, columns=[Person.display_name, Person.id], page=page, descending=False)


async def management_chain(session: AsyncSession, *, person: Person) -> list[Person]:
    """Managers from the nearest up, in one recursive query; stops at the top, at a cycle in bad data
    or after MAX_CHAIN levels."""
    if person.manager_id is None:
        return []
    chain = (select(Person.id, Person.manager_id, literal(1).label("depth"),
                    array([Person.id]).label("path"))
             .where(Person.id == person.manager_id).cte("chain", recursive=True))
    up = aliased(Person)
    chain = chain.union_all(
        select(up.id, up.manager_id, chain.c.depth + 1, chain.c.path.concat(array([up.id])))
        .where(up.id == chain.c.manager_id, chain.c.depth < MAX_CHAIN, up.id != person.id,
               ~(up.id == func.any(chain.c.path))))
    rows = await session.execute(select(Person).join(chain, chain.c.id == Person.id).order_by(chain.c.depth))
    return list(rows.scalars())


async def direct_reports(session: AsyncSession, *, person: Person) -> list[Person]:
    return list(await session.scalars(select(Person).where(Person.manager_id == person.id, Person.active.is_(True))
                                      .order_by(Person.display_name)))


async def resolve_handles(session: AsyncSession, *, handles: set[str]) -> list[Person]:
    if not handles:
        return []
    return list(await session.scalars(select(Person).where(Person.handle.in_(handles), Person.active.is_(True))))


async def ensure_admin(session: AsyncSession, *, email: str, password: str, display_name: str) -> Person:
    """Create the bootstrap admin when absent (the caller commits); safe to run on every replica at start."""
    existing = await get_by_email(session, email=email)
    if existing is not None:
        return existing
    if len(password) < 8:
        raise InvalidInput("HEARTH_ADMIN_PASSWORD must have at least 8 characters.")
    try:
        async with session.begin_nested():  # a lost race undoes this insert only; the caller commits
            return await create(session, data=PersonCreate(email=email, password=password,
                                                           display_name=display_name, handle="admin",
                                                           roles=["admin"]), actor=None)
    except Conflict:  # another replica won the race
        return await get_by_email(session, email=email)
