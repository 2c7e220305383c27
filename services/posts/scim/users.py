"""SCIM Users over the people directory: mapping both ways, and every change through people's service.

What Hearth keeps of a SCIM User: userName is the sign-in email (lower-cased, unique); displayName, else
name.formatted, else givenName + familyName, is the display name (Hearth stores no separate given and
family names, so a User reads back with `name.formatted` only); `emails` is derived from userName and
writes to it are ignored; the work address gives location (locality) and country; preferredLanguage
and other attributes Hearth has no column for are accepted and dropped.

DELETE never removes a person (their posts, messages and the org chart refer to them): it deactivates,
exactly as `active: false` does, and the User stays readable with `active: false`. That is also what
lets an identity provider find and reactivate them with a filter on userName if they come back.
"""

from uuid import UUID

from scim2_models import Address, Email, Meta, Name, PatchOp
from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.people import service as people
from services.posts.people.models import Person
from services.posts.people.schemas import AdminFields, PersonCreate
from services.posts.scim.errors import ScimInvalidValue, ScimUniqueness
from services.posts.scim.filters import ColumnMap, to_sql
from services.posts.scim.schemas import POLICY, EnterpriseUser, Manager, ScimUser

# SCIM attribute (as scim2-models binds it) -> column, compared case-insensitively or not.
USER_COLUMNS: ColumnMap = {
    ("id", None): (Person.id, False),
    ("external_id", None): (Person.external_id, False),  # caseExact in RFC 7643
    ("user_name", None): (Person.email, True),
    ("display_name", None): (Person.display_name, True),
    ("name", "formatted"): (Person.display_name, True),
    ("emails", "value"): (Person.email, True),
    ("emails", "type"): (literal("work"), True),
    ("emails", "primary"): (literal(True), False),
    ("active", None): (Person.active, False),
    ("title", None): (Person.title, True),
    ("timezone", None): (Person.time_zone, False),
    ("addresses", "locality"): (Person.location, True),
    ("addresses", "country"): (Person.country, True),
    ("meta", "created"): (Person.created_at, False),
    ("meta", "last_modified"): (Person.updated_at, False),
    ("department", None): (Person.department, True),
    ("employee_number", None): (Person.employee_number, False),
    ("organization", None): (Person.organization, True),
    ("manager", "value"): (Person.manager_id, False),
}


def etag(person: Person) -> str:
    return f'W/"{int(person.updated_at.timestamp() * 1_000_000)}"'


def to_resource(person: Person, *, base_url: str) -> ScimUser:
    """The SCIM User a person is (never with a password)."""
    user = ScimUser(
        id=str(person.id), external_id=person.external_id, user_name=person.email,
        name=Name(formatted=person.display_name), display_name=person.display_name, title=person.title,
        active=person.active, timezone=person.time_zone,
        emails=[Email(value=person.email, type="work", primary=True)],
        addresses=[Address(type="work", locality=person.location, country=person.country, primary=True)]
        if person.location or person.country else None,
        meta=Meta(resource_type="User", created=person.created_at, last_modified=person.updated_at,
                  location=f"{base_url}/Users/{person.id}", version=etag(person)))
    manager = person.manager_id and Manager(value=str(person.manager_id), ref=f"{base_url}/Users/{person.manager_id}")
    user[EnterpriseUser] = EnterpriseUser(department=person.department, employee_number=person.employee_number,
                                          organization=person.organization, manager=manager or None)
    return user


def _display_name(user: ScimUser) -> str | None:
    if user.display_name:
        return user.display_name
    name = user.name
    if name is None:
        return None
    return name.formatted or " ".join(p for p in (name.given_name, name.family_name) if p) or None


def _work_address(user: ScimUser) -> Address | None:
    addresses = user.addresses or []
    return next((a for a in addresses if a.type == "work"), None) or next((a for a in addresses if a.primary), None) \
        or (addresses[0] if addresses else None)


async def _profile(session: AsyncSession, user: ScimUser, *, person: Person | None, fallback_name: str) -> dict:
    """The people columns a User sets, validated like an admin's edit; SCIM owns all of them."""
    enterprise = user[EnterpriseUser] or EnterpriseUser()
    address = _work_address(user)
    if not user.user_name:
        raise ScimInvalidValue("userName is required.")
    fields = AdminFields(
        email=user.user_name, display_name=_display_name(user) or fallback_name, title=user.title,
        department=enterprise.department, employee_number=enterprise.employee_number,
        organization=enterprise.organization, time_zone=user.timezone,
        manager_id=enterprise.manager.value if enterprise.manager and enterprise.manager.value else None,
        location=address.locality if address else None,
        country=address.country.upper() if address and address.country else None,
    ).model_dump(include={"email", "display_name", "title", "department", "employee_number", "organization",
                          "time_zone", "manager_id", "location", "country"})
    if fields["manager_id"] is not None and await people.get(session, person_id=fields["manager_id"]) is None:
        raise ScimInvalidValue(f"The manager {fields['manager_id']} is not a Hearth user.")
    if user.external_id:
        owner = await session.scalar(select(Person.id).where(Person.external_id == user.external_id))
        if owner is not None and (person is None or owner != person.id):
            raise ScimUniqueness(f"The externalId {user.external_id} belongs to another user.")
    if (person is None or fields["email"] != person.email) and await people.get_by_email(
            session, email=fields["email"]) is not None:
        raise ScimUniqueness(f"The userName {fields['email']} is already taken.")
    return fields | {"external_id": user.external_id}


async def get(session: AsyncSession, *, user_id: str) -> Person | None:
    try:
        return await people.get(session, person_id=UUID(user_id))
    except ValueError:  # not a UUID: no such user
        return None


async def create(session: AsyncSession, *, user: ScimUser) -> Person:
    """Provision a person; inactive from the start when the provider says so."""
    fields = await _profile(session, user, person=None, fallback_name=user.user_name or "")
    data = PersonCreate(**fields, password=user.password)
    person = await people.create(session, data=data, actor=None, commit=False)
    if user.active is False:
        await people.deactivate(session, person=person, actor=None, commit=False)
    await session.commit()
    return person


async def replace(session: AsyncSession, *, person: Person, user: ScimUser) -> Person:
    """PUT: the User as given becomes the person's SCIM-managed profile, in one transaction."""
    fields = await _profile(session, user, person=person, fallback_name=person.display_name)
    active = person.active if user.active is None else user.active
    if active and not person.active:
        await people.reactivate(session, person=person, actor=None, commit=False)
    await people.update(session, person=person, changes=fields, actor=None, commit=False)
    if user.password:
        await people.set_password(session, person=person, password=user.password)
    if not active and person.active:  # last, so the deactivation event carries the final profile
        await people.deactivate(session, person=person, actor=None, commit=False)
    await session.commit()
    return person


async def patch(session: AsyncSession, *, person: Person, operations: PatchOp[ScimUser], base_url: str) -> Person:
    """PATCH: apply the operations to the person's SCIM form (scim2-models), then store that like a PUT."""
    user = to_resource(person, base_url=base_url)
    operations.patch(user, scim_policy=POLICY)
    return await replace(session, person=person, user=user)


async def delete(session: AsyncSession, *, person: Person) -> None:
    """Deactivate: Hearth keeps the person (see the module docstring)."""
    await people.deactivate(session, person=person, actor=None)


async def search(session: AsyncSession, *, filter: str | None, start_index: int,
                 count: int) -> tuple[int, list[Person]]:
    """One page of people matching a SCIM filter, in creation order, and how many match in all."""
    stmt = select(Person)
    if filter:
        stmt = stmt.where(to_sql(filter, model=ScimUser, columns=USER_COLUMNS))
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    if count == 0:
        return total, []
    page = await session.scalars(stmt.order_by(Person.created_at, Person.id).offset(start_index - 1).limit(count))
    return total, list(page)
