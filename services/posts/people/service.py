import re
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.auth.passwords import hash_password
from services.posts.people.models import Person
from services.posts.people.schemas import PersonCreate
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import PersonCreated, PersonSnapshot
from shared.outbox import add_event


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


async def get_by_email(session: AsyncSession, *, email: str) -> Person | None:
    return await session.scalar(select(Person).where(Person.email == email.strip().lower()))


async def _free_handle(session: AsyncSession, email: str) -> str:
    """A handle from the email's local part, suffixed with a number when taken."""
    base = re.sub(r"[^a-z0-9._-]", "", email.split("@")[0].lower())[:56] or "user"
    taken = set(await session.scalars(select(Person.handle).where(Person.handle.like(f"{base}%"))))
    if base not in taken:
        return base
    return next(f"{base}{n}" for n in range(2, len(taken) + 3) if f"{base}{n}" not in taken)


async def create(session: AsyncSession, *, data: PersonCreate, actor: UUID | None) -> Person:
    """Create a person and announce them on people.v1."""
    email = str(data.email).strip().lower()
    if await get_by_email(session, email=email) is not None:
        raise EmailTaken(f"{email} already belongs to someone.")
    if data.manager_id is not None:
        await get_or_raise(session, person_id=data.manager_id)
    handle = data.handle or await _free_handle(session, email)
    if data.handle and await session.scalar(select(func.count()).where(Person.handle == handle)):
        raise Conflict(f"The handle {handle} is taken.", field="handle")
    person = Person(**data.model_dump(exclude={"email", "handle", "password", "roles"}), email=email, handle=handle,
                    roles=sorted(set(data.roles) | {"member"}),
                    password_hash=hash_password(data.password) if data.password else None)
    session.add(person)
    try:
        await session.flush()
    except IntegrityError:
        raise EmailTaken(f"{email} already belongs to someone.")
    await add_event(session, PersonCreated(person=snapshot(person)), subject=person.id, actor=actor)
    await session.commit()
    return person


async def resolve_handles(session: AsyncSession, *, handles: set[str]) -> list[Person]:
    if not handles:
        return []
    return list(await session.scalars(select(Person).where(Person.handle.in_(handles), Person.active.is_(True))))


async def ensure_admin(session: AsyncSession, *, email: str, password: str, display_name: str) -> Person:
    """Create the bootstrap admin when absent; safe to run from every replica at start-up."""
    existing = await get_by_email(session, email=email)
    if existing is not None:
        return existing
    if len(password) < 8:
        raise InvalidInput("HEARTH_ADMIN_PASSWORD must have at least 8 characters.")
    try:
        return await create(session, data=PersonCreate(email=email, password=password, display_name=display_name,
                                                       handle="admin", roles=["admin"]), actor=None)
    except Conflict:  # another replica won the race
        await session.rollback()
        return await get_by_email(session, email=email)
