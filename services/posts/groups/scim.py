"""SCIM Groups over Hearth groups: provisioned groups only, every change through the groups service.

This is the groups domain's provisioning adapter: it speaks SCIM through identity's SCIM helpers
(schemas, filters, errors), which the social code may use, while identity never imports groups.

A SCIM Group is a private, non-official Hearth group marked `provisioned`, with the identity provider's
externalId; groups people made themselves are invisible to SCIM, so an IdP cannot take them over.
Members are plain members (a provisioned group has no owner). Deactivated people are skipped: they
belong to no group in Hearth. The groups service has no delete, so DELETE archives the group (posts
stay readable for its members) and frees its externalId; an archived group is gone as far as SCIM is
concerned (404), which is what RFC 7644 §3.6 asks of a deleted resource.
"""

from uuid import UUID

from scim2_models import Meta, PatchOp
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.groups import service as groups
from services.posts.groups.models import Group, GroupMember as Membership
from services.posts.groups.schemas import GroupCreate
from services.posts.people import api as people
from services.posts.scim.errors import ScimInvalidValue, ScimUniqueness
from services.posts.scim.filters import ColumnMap, Predicate, to_sql
from services.posts.scim.schemas import POLICY, Member, ScimGroup


def _has_member(value: str):
    try:
        person_id = UUID(value)
    except ValueError:
        return Group.id.is_(None)  # never true: no such person
    return exists().where(Membership.group_id == Group.id, Membership.person_id == person_id)


GROUP_COLUMNS: ColumnMap = {
    ("id", None): (Group.id, False),
    ("external_id", None): (Group.external_id, False),
    ("display_name", None): (Group.name, True),
    ("members", "value"): (Predicate(_has_member), False),
    ("meta", "created"): (Group.created_at, False),
    ("meta", "last_modified"): (Group.updated_at, False),
}


def _scim_visible():
    return (Group.provisioned.is_(True), Group.archived.is_(False))


async def get(session: AsyncSession, *, group_id: str) -> Group | None:
    try:
        group = await groups.get(session, group_id=UUID(group_id))
    except ValueError:
        return None
    return group if group is not None and group.provisioned and not group.archived else None


async def members_of(session: AsyncSession, *, group_ids: list[UUID]) -> dict[UUID, list[UUID]]:
    """The member ids of several groups in one query (SCIM lists members by id only)."""
    rows = await session.execute(select(Membership.group_id, Membership.person_id)
                                 .where(Membership.group_id.in_(group_ids)).order_by(Membership.person_id))
    found: dict[UUID, list[UUID]] = {group_id: [] for group_id in group_ids}
    for group_id, person_id in rows:
        found[group_id].append(person_id)
    return found


def to_resource(group: Group, member_ids: list[UUID], *, base_url: str) -> ScimGroup:
    return ScimGroup(
        id=str(group.id), external_id=group.external_id, display_name=group.name,
        members=[Member(value=str(person_id), type="User", ref=f"{base_url}/Users/{person_id}")
                 for person_id in member_ids],
        meta=Meta(resource_type="Group", created=group.created_at, last_modified=group.updated_at,
                  location=f"{base_url}/Groups/{group.id}",
                  version=f'W/"{int(group.updated_at.timestamp() * 1_000_000)}"'))


async def _wanted_members(session: AsyncSession, resource: ScimGroup) -> set[UUID]:
    """The active people a Group lists; an id that is nobody is an error, a deactivated person is skipped."""
    try:
        ids = {UUID(m.value) for m in resource.members or [] if m.value}
    except ValueError:
        raise ScimInvalidValue("Group members are Hearth user ids.")
    known = await people.activity(session, person_ids=ids)
    if unknown := ids - set(known):
        raise ScimInvalidValue(f"Not Hearth users: {', '.join(sorted(map(str, unknown)))}.")
    return {person_id for person_id, active in known.items() if active}


async def _check_external_id(session: AsyncSession, resource: ScimGroup, group: Group | None) -> None:
    if resource.external_id:
        owner = await groups.get_by_external_id(session, external_id=resource.external_id)
        if owner is not None and (group is None or owner.id != group.id):
            raise ScimUniqueness(f"The externalId {resource.external_id} belongs to another group.")


async def create(session: AsyncSession, *, resource: ScimGroup) -> Group:
    """Provision a private group with its members, in one transaction."""
    await _check_external_id(session, resource, None)
    wanted = await _wanted_members(session, resource)
    group = await groups.create(session, data=GroupCreate(
        name=resource.display_name or "", visibility="private", official=False, external_id=resource.external_id,
        provisioned=True), actor_id=None)
    await groups.set_provisioned_members(session, group=group, person_ids=wanted)
    return group


async def replace(session: AsyncSession, *, group: Group, resource: ScimGroup) -> Group:
    """PUT: name, externalId and the whole member list become what the Group says."""
    await _check_external_id(session, resource, group)
    wanted = await _wanted_members(session, resource)
    await groups.update(session, group=group, changes={"name": resource.display_name,
                                                       "external_id": resource.external_id}, actor_id=None)
    await groups.set_provisioned_members(session, group=group, person_ids=wanted)
    return group


async def patch(session: AsyncSession, *, group: Group, operations: PatchOp[ScimGroup], base_url: str) -> Group:
    """PATCH: apply the operations to the Group as it stands (scim2-models), then store it like a PUT."""
    members = (await members_of(session, group_ids=[group.id]))[group.id]
    resource = to_resource(group, members, base_url=base_url)
    operations.patch(resource, scim_policy=POLICY)
    return await replace(session, group=group, resource=resource)


async def delete(session: AsyncSession, *, group: Group) -> None:
    """Archive, and free the externalId so the provider can create the group again."""
    await groups.update(session, group=group, changes={"archived": True, "external_id": None}, actor_id=None)


async def search(session: AsyncSession, *, filter: str | None, start_index: int,
                 count: int) -> tuple[int, list[Group]]:
    """One page of provisioned groups matching a SCIM filter, and how many match in all."""
    stmt = select(Group).where(*_scim_visible())
    if filter:
        stmt = stmt.where(to_sql(filter, model=ScimGroup, columns=GROUP_COLUMNS))
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    if count == 0:
        return total, []
    page = await session.scalars(stmt.order_by(Group.created_at, Group.id).offset(start_index - 1).limit(count))
    return total, list(page)
