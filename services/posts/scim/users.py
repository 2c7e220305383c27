"""SCIM Users over the people directory: mapping both ways, and every change through people's service.

What Hearth keeps of a SCIM User: `userName` is any string, unique case-insensitively (RFC 7643
§4.1.1); the sign-in email comes from `emails` (primary, else work, else the first), else from
userName when it is an address; a user without one gets an address under `.invalid` that nobody can
sign in with (SSO still matches them by externalId). displayName (else name.formatted, else given +
family name), title, timezone, the work address (locality, and country when it is an ISO code) and
the enterprise extension fill the people columns Hearth uses. The whole User as the provider sent it
(without the password) is kept in `scim_profile`, so every attribute /Schemas advertises reads back
as written; where a Hearth admin has since changed a column, the column wins.

DELETE never removes a person (their posts, messages and the org chart refer to them): it deactivates
them and hides the User from SCIM (every operation on its id is 404, RFC 7644 §3.6). A later POST
with the same externalId or userName brings the same person back, active.
"""

import re
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from scim2_models import Address, Context, Email, Meta, PatchOp
from sqlalchemy import func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.posts.people import service as people
from services.posts.people.models import Person
from services.posts.people.schemas import PASSWORD_MAX_LENGTH, AdminFields, PersonCreate
from services.posts.scim.errors import ScimInvalidValue, ScimUniqueness
from services.posts.scim.filters import ColumnMap, to_sql
from services.posts.scim.schemas import POLICY, EnterpriseUser, Manager, ScimUser
from shared.db import utcnow
from shared.types import Email as EmailAddress
from shared.types import SafeText, check_text

NO_EMAIL_DOMAIN = "provisioned.invalid"  # RFC 2606: can never be a real mailbox
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_user_name = TypeAdapter(SafeText(Person.user_name, min_length=1))
_external_id = TypeAdapter(SafeText(Person.external_id, min_length=1) | None)
_email = TypeAdapter(EmailAddress)

# SCIM attribute (as scim2-models binds it) -> column, compared case-insensitively or not.
USER_COLUMNS: ColumnMap = {
    ("id", None): (Person.id, False),
    ("external_id", None): (Person.external_id, False),  # caseExact in RFC 7643
    ("user_name", None): (func.coalesce(Person.user_name, Person.email), True),
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


def has_no_email(person: Person) -> bool:
    return person.email.endswith("@" + NO_EMAIL_DOMAIN)


def to_resource(person: Person, *, base_url: str) -> ScimUser:
    """The SCIM User a person is: the User last provisioned, with what Hearth changed since laid over it."""
    profile = person.scim_profile or {}
    user = ScimUser.model_validate(profile["user"]) if profile.get("user") else ScimUser()
    user.id, user.external_id = str(person.id), person.external_id
    user.user_name = person.user_name or person.email
    user.password = None
    user.meta = Meta(resource_type="User", created=person.created_at, last_modified=person.updated_at,
                     location=f"{base_url}/Users/{person.id}", version=etag(person))
    provisioned = profile.get("columns", {})
    changed = {c for c in COLUMNS if c not in provisioned or _plain(getattr(person, c)) != provisioned[c]}
    if person.active != (True if provisioned.get("active") is None else provisioned["active"]):
        changed.add("active")  # an active person the provider said nothing about reads without `active`
    if "active" in changed:
        user.active = person.active
    if "display_name" in changed:
        user.display_name = person.display_name
    if "title" in changed:
        user.title = person.title
    if "time_zone" in changed:
        user.timezone = person.time_zone
    if changed & {"location", "country"}:
        address = _work_address(user)
        if address is None:
            address = Address(type="work", primary=True)
            user.addresses = [*(user.addresses or []), address]
        address.locality = person.location
        if "country" in changed:
            address.country = person.country
    if "email" in changed and not has_no_email(person):
        chosen = _chosen_email(user)
        if chosen is not None:
            chosen.value = person.email
        else:
            user.emails = [*(user.emails or []), Email(value=person.email, type="work", primary=True)]
    enterprise = user[EnterpriseUser] or EnterpriseUser()
    for column in changed & {"department", "employee_number", "organization"}:
        setattr(enterprise, column, getattr(person, column))
    if "manager_id" in changed:
        enterprise.manager = person.manager_id and Manager(value=str(person.manager_id),
                                                           ref=f"{base_url}/Users/{person.manager_id}") or None
    if enterprise.manager and enterprise.manager.value and not enterprise.manager.ref:  # Okta and Entra send no $ref
        enterprise.manager.ref = f"{base_url}/Users/{enterprise.manager.value}"
    if any(getattr(enterprise, f) is not None for f in type(enterprise).model_fields if f != "schemas"):
        user[EnterpriseUser] = enterprise
    return user


COLUMNS = ("email", "display_name", "title", "time_zone", "location", "country", "department", "employee_number",
           "organization", "manager_id")


def _plain(value):
    return str(value) if isinstance(value, UUID) else value


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


def _chosen_email(user: ScimUser) -> Email | None:
    emails = [e for e in user.emails or [] if e.value]
    return next((e for e in emails if e.primary), None) or next((e for e in emails if e.type == "work"), None) \
        or (emails[0] if emails else None)


def _columns(user: ScimUser) -> dict:
    """The people columns a User's attributes stand for (unvalidated)."""
    enterprise = user[EnterpriseUser] or EnterpriseUser()
    address = _work_address(user)
    chosen = _chosen_email(user)
    email = chosen.value if chosen else (user.user_name if user.user_name and "@" in user.user_name else None)
    country = address.country.upper() if address and address.country else None
    return {"email": email, "display_name": _display_name(user), "title": user.title, "time_zone": user.timezone,
            "location": address.locality if address else None,
            "country": country if country and _COUNTRY.match(country) else None,
            "department": enterprise.department, "employee_number": enterprise.employee_number,
            "organization": enterprise.organization,
            "manager_id": UUID(enterprise.manager.value) if enterprise.manager and _is_uuid(enterprise.manager.value)
            else None}


def _is_uuid(value: str | None) -> bool:
    try:
        UUID(str(value))
        return True
    except ValueError:
        return False


def _stored(user: ScimUser) -> dict:
    """What is kept of a User: everything but the password and what the server assigns."""
    body = user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for key in ("id", "meta", "password", "groups"):
        body.pop(key, None)
    return body


async def _profile(session: AsyncSession, user: ScimUser, *, person: Person | None, fallback_name: str) -> dict:
    """The people columns a User sets, validated like an admin's edit; SCIM owns all of them."""
    try:
        user_name = _user_name.validate_python(user.user_name)
        external_id = _external_id.validate_python(user.external_id)
        columns = _columns(user)
        email = _email.validate_python(columns["email"]) if columns["email"] else None
    except ValidationError as exc:
        raise ScimInvalidValue(f"{exc.errors()[0]['loc'] or ''} {exc.errors()[0]['msg']}".strip())
    if email is None:
        email = person.email if person is not None and has_no_email(person) else f"{uuid7()}@{NO_EMAIL_DOMAIN}"
    fields = AdminFields(**{k: v for k, v in columns.items() if k != "email"}
                         | {"display_name": columns["display_name"] or fallback_name}).model_dump(
        include={"display_name", "title", "department", "employee_number", "organization", "time_zone",
                 "manager_id", "location", "country"})
    if fields["manager_id"] is not None and await people.get(session, person_id=fields["manager_id"]) is None:
        raise ScimInvalidValue(f"The manager {fields['manager_id']} is not a Hearth user.")
    if external_id:
        owner = await session.scalar(select(Person.id).where(Person.external_id == external_id))
        if owner is not None and (person is None or owner != person.id):
            raise ScimUniqueness(f"The externalId {external_id} belongs to another user.")
    owner = await session.scalar(select(Person.id).where(func.lower(Person.user_name) == user_name.lower()))
    if owner is not None and (person is None or owner != person.id):
        raise ScimUniqueness(f"The userName {user_name} is already taken.")
    if (person is None or email != person.email) and await people.get_by_email(session, email=email) is not None:
        raise ScimUniqueness(f"The email {email} belongs to another user.")
    fields |= {"email": email, "external_id": external_id}
    snapshot = {c: _plain(fields[c]) for c in COLUMNS} | {"active": user.active}
    return fields | {"user_name": user_name, "scim_profile": {"user": _stored(user), "columns": snapshot}}


def _check_input(user: ScimUser) -> None:
    """Refuse what no column or JSONB can hold before anything is looked up: control characters and lone
    surrogates in any string, an over-long userName or externalId, a password out of bounds."""
    if user.password is not None and not 8 <= len(user.password) <= PASSWORD_MAX_LENGTH:
        raise ScimInvalidValue(f"A password has 8 to {PASSWORD_MAX_LENGTH} characters.")
    try:
        _user_name.validate_python(user.user_name)
        _external_id.validate_python(user.external_id)
        _check_strings(user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    except (ValidationError, ValueError) as exc:
        raise ScimInvalidValue(f"Invalid text: {exc}".splitlines()[0])


def _check_strings(value) -> None:
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


async def get(session: AsyncSession, *, user_id: str) -> Person | None:
    """The person behind a SCIM id; None for made-up ids and for Users DELETEd through SCIM."""
    try:
        person = await people.get(session, person_id=UUID(user_id))
    except ValueError:  # not a UUID: no such user
        return None
    return None if person is None or person.scim_deleted_at is not None else person


async def create(session: AsyncSession, *, user: ScimUser) -> Person:
    """Provision a person; inactive from the start when the provider says so. A DELETEd User with the same
    externalId or userName comes back instead (the same person, reactivated)."""
    _check_input(user)
    returning = await _deleted_match(session, user)
    if returning is not None:
        returning.scim_deleted_at = None
        return await replace(session, person=returning, user=user)
    fields = await _profile(session, user, person=None, fallback_name=user.user_name or "")
    scim_only = {k: fields.pop(k) for k in ("user_name", "scim_profile", "email")}
    data = PersonCreate.model_construct(**(PersonCreate.model_validate(
        fields | {"email": "placeholder@example.com", "password": user.password}).model_dump()
        | {"email": scim_only["email"]}))
    person = await people.create(session, data=data, actor=None)
    person.user_name, person.scim_profile = scim_only["user_name"], scim_only["scim_profile"]
    if user.active is False:
        await people.deactivate(session, person=person, actor=None)
    return person


async def _deleted_match(session: AsyncSession, user: ScimUser) -> Person | None:
    conditions = [func.lower(Person.user_name) == user.user_name.lower()] if user.user_name else []
    if user.external_id:
        conditions.append(Person.external_id == user.external_id)
    if not conditions:
        return None
    return await session.scalar(select(Person).where(Person.scim_deleted_at.is_not(None), or_(*conditions)).limit(1))


async def replace(session: AsyncSession, *, person: Person, user: ScimUser) -> Person:
    """PUT: the User as given becomes the person's SCIM-managed profile, in one transaction."""
    _check_input(user)
    fields = await _profile(session, user, person=person, fallback_name=person.display_name)
    # A User without `active` is an active one (RFC 7644 §3.5.1: what a PUT leaves out takes its default).
    active = True if user.active is None else user.active
    if active and not person.active:
        await people.reactivate(session, person=person, actor=None)
    person.user_name, person.scim_profile = fields.pop("user_name"), fields.pop("scim_profile")
    await people.update(session, person=person, changes=fields, actor=None)
    if user.password:
        await people.set_password(session, person=person, password=user.password)
    if not active and person.active:  # last, so the deactivation event carries the final profile
        await people.deactivate(session, person=person, actor=None)
    return person


async def patch(session: AsyncSession, *, person: Person, operations: PatchOp[ScimUser], base_url: str) -> Person:
    """PATCH: apply the operations to the person's SCIM form (scim2-models), then store that like a PUT."""
    user = to_resource(person, base_url=base_url)
    operations.patch(user, scim_policy=POLICY)
    return await replace(session, person=person, user=user)


async def delete(session: AsyncSession, *, person: Person) -> None:
    """Deactivate and hide from SCIM: Hearth keeps the person (see the module docstring)."""
    person.scim_deleted_at = utcnow()
    await people.deactivate(session, person=person, actor=None)


async def search(session: AsyncSession, *, filter: str | None, start_index: int,
                 count: int) -> tuple[int, list[Person]]:
    """One page of people matching a SCIM filter, in creation order, and how many match in all."""
    stmt = select(Person).where(Person.scim_deleted_at.is_(None))
    if filter:
        stmt = stmt.where(to_sql(filter, model=ScimUser, columns=USER_COLUMNS))
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    if count == 0:
        return total, []
    page = await session.scalars(stmt.order_by(Person.created_at, Person.id).offset(start_index - 1).limit(count))
    return total, list(page)
