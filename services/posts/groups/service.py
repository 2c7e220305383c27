"""Groups: visibility, membership, invites and join requests.

Public groups are open to everyone. Private groups are listed with their name and description, but
their members and content are for members, who get in by a request a group admin approves (or an
invite). Secret groups do not exist for non-members (404, never 403) and are joined by invite only.
The "All company" group's membership is implicit: every active person belongs, no rows are kept.
Company admins (token role "admin") manage every group as its owners do.

The primitives (`create`, `update`, `add_member`, `remove_member`) do no authorization: provisioning
(SCIM) calls them directly. The other functions act for a person and check what that person may do.
"""

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import ARRAY, DateTime, Uuid, any_, bindparam, delete, func, literal, not_, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.posts.groups.models import Group, GroupInvite, GroupJoinRequest, GroupMember
from services.posts.groups.schemas import (GroupCreate, GroupCreateRequest, GroupPublic, GroupSummary, GroupUpdate,
                                           InvitePublic, JoinRequestPublic, JoinState, MemberPublic)
from services.posts.people.api import Person, PersonSummary
from services.posts.people import api as people
from shared.auth import CurrentUser
from shared.db import utcnow
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.events import (GroupCreated, GroupInvited, GroupJoinRequested, GroupMemberAdded, GroupMemberRemoved,
                           GroupMemberRoleChanged, GroupSnapshot, GroupUpdated)
from shared.outbox import add_event, add_events
from shared.pagination import PageParams, paginate

ALL_COMPANY_NAME = "All company"
UPDATABLE = {"name", "description", "visibility", "official", "official_kind", "admins_only_posting", "archived",
             "external_id", "provisioned"}
REQUIRED = {"name", "description", "visibility", "official", "admins_only_posting", "archived", "provisioned"}


class GroupNotFound(NotFound):
    code, title = "group-not-found", "Group not found"


class GroupInviteNotFound(NotFound):
    code, title = "group-invite-not-found", "Group invite not found"


class JoinRequestNotFound(NotFound):
    code, title = "join-request-not-found", "Join request not found"


class GroupMemberNotFound(NotFound):
    code, title = "group-member-not-found", "Not a member of this group"


class NotAGroupMember(Forbidden):
    code, title = "not-a-group-member", "Not a group member"


class NotAGroupAdmin(Forbidden):
    code, title = "not-a-group-admin", "Not a group admin"


class NotAGroupOwner(Forbidden):
    code, title = "not-a-group-owner", "Not a group owner"


class CannotRemoveOwner(Forbidden):
    code, title = "cannot-remove-owner", "Only owners remove owners"


class OfficialNeedsCompanyAdmin(Forbidden):
    code, title = "official-group-needs-admin", "Official groups are for company admins"


class AdminsOnlyPosting(Forbidden):
    code, title = "admins-only-posting", "Only group admins post here"


class GroupArchived(Conflict):
    code, title = "group-archived", "Group archived"


class LastOwner(Conflict):
    code, title = "last-owner", "A group needs an owner"


class AlreadyAMember(Conflict):
    code, title = "already-a-member", "Already a member"


class AllCompanyGroup(Conflict):
    code, title = "all-company-group", "Everyone belongs to All company"


class GroupConflict(Conflict):
    code, title = "group-conflict", "Group conflicts with an existing one"


class ExternalIdTaken(GroupConflict):
    code, title = "group-external-id-taken", "External id already in use"


@dataclass(frozen=True)
class GroupAccess:
    """A group and where one person stands in it."""

    group: Group
    person_id: UUID
    role: str | None  # membership role; "member" for every active person in All company
    company_admin: bool = False

    @property
    def is_member(self) -> bool:
        return self.role is not None

    @property
    def can_see(self) -> bool:
        return self.group.visibility != "secret" or self.is_member or self.company_admin

    @property
    def can_see_members(self) -> bool:
        return self.group.visibility == "public" or self.is_member or self.company_admin

    @property
    def can_manage(self) -> bool:
        return self.company_admin or self.role in ("owner", "admin")

    @property
    def is_owner(self) -> bool:
        return self.company_admin or self.role == "owner"


def snapshot(group: Group) -> GroupSnapshot:
    return GroupSnapshot.model_validate(group, from_attributes=True)


# --- loading and visibility -------------------------------------------------------------------------

async def get(session: AsyncSession, *, group_id: UUID) -> Group | None:
    return await session.get(Group, group_id)


async def get_or_raise(session: AsyncSession, *, group_id: UUID) -> Group:
    """The group, whoever asks (no visibility check)."""
    group = await session.get(Group, group_id)
    if group is None:
        raise GroupNotFound()
    return group


async def get_by_external_id(session: AsyncSession, *, external_id: str) -> Group | None:
    return await session.scalar(select(Group).where(Group.external_id == external_id))


async def role_of(session: AsyncSession, *, group: Group, person_id: UUID) -> str | None:
    if group.all_company:
        person = await session.get(Person, person_id)
        return "member" if person is not None and person.active else None
    return await session.scalar(select(GroupMember.role).where(GroupMember.group_id == group.id,
                                                               GroupMember.person_id == person_id))


async def access(session: AsyncSession, *, group: Group, user: CurrentUser) -> GroupAccess:
    return GroupAccess(group=group, person_id=user.id, role=await role_of(session, group=group, person_id=user.id),
                       company_admin=user.has_role("admin"))


async def access_or_raise(session: AsyncSession, *, group_id: UUID, user: CurrentUser) -> GroupAccess:
    """The group as `user` stands in it; 404 when it is secret to them, so its existence does not leak."""
    group = await session.get(Group, group_id)
    standing = None if group is None else await access(session, group=group, user=user)
    if standing is None or not standing.can_see:
        raise GroupNotFound()
    return standing


async def content_readers(session: AsyncSession, *, group: Group, person_ids: list[UUID]) -> list[UUID]:
    """Which of `person_ids` may read the group's posts: anyone for public groups, members otherwise."""
    if group.visibility == "public" or not person_ids:
        return list(person_ids)
    members = set(await session.scalars(select(GroupMember.person_id).where(
        GroupMember.group_id == group.id, GroupMember.person_id.in_(person_ids))))
    return [p for p in person_ids if p in members]


async def can_read_content(session: AsyncSession, *, group: Group, person_id: UUID) -> bool:
    return bool(await content_readers(session, group=group, person_ids=[person_id]))


async def ensure_can_post(session: AsyncSession, *, group: Group, user: CurrentUser) -> None:
    """404 for a secret group's non-members, 409 when archived, 403 for non-members or non-admins."""
    standing = await access(session, group=group, user=user)
    if not standing.can_see:
        raise GroupNotFound()
    _ensure_open(group)
    if not (standing.is_member or standing.company_admin):
        raise NotAGroupMember("Join the group to post in it.")
    if group.admins_only_posting and not standing.can_manage:
        raise AdminsOnlyPosting()


def _ensure_open(group: Group) -> None:
    if group.archived:
        raise GroupArchived("The group is archived: it is read-only.")


def _require_manager(standing: GroupAccess) -> None:
    if not standing.can_manage:
        raise NotAGroupAdmin("Only the group's owners and admins can do this.")


def _require_owner(standing: GroupAccess) -> None:
    if not standing.is_owner:
        raise NotAGroupOwner("Only the group's owners can do this.")


def _refuse_all_company(group: Group) -> None:
    if group.all_company:
        raise AllCompanyGroup("Every active person belongs to All company; its membership cannot be changed.")


# --- primitives (no authorization; provisioning calls these) -----------------------------------------

async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError:  # a race on external_id or on the single All company group
        raise GroupConflict()


async def _insert(session: AsyncSession, *, group: Group, owner_id: UUID | None, actor_id: UUID | None) -> Group:
    session.add(group)
    await _flush(session)
    await add_event(session, GroupCreated(group=snapshot(group)), subject=group.id, actor=actor_id)
    if owner_id is not None:
        await add_member(session, group=group, person_id=owner_id, role="owner", via="created", actor_id=actor_id)
    return group


async def create(session: AsyncSession, *, data: GroupCreate, actor_id: UUID | None) -> Group:
    """Create a group; a person creating it becomes its owner (provisioned groups have no owner)."""
    if data.external_id is not None and await get_by_external_id(session, external_id=data.external_id):
        raise ExternalIdTaken(f"A group already has the external id {data.external_id}.")
    group = Group(**data.model_dump(), created_by=actor_id)
    owner_id = None if data.provisioned else actor_id
    return await _insert(session, group=group, owner_id=owner_id, actor_id=actor_id)


def _settings(group: Group, changes: dict) -> dict:
    """Checked settings: known fields, required ones not emptied, All company kept public."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidInput(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    for field in REQUIRED & {k for k, v in changes.items() if v is None}:
        raise InvalidInput(f"{field} cannot be empty.", field=field)
    if group.all_company and changes.get("visibility", "public") != "public":
        raise InvalidInput("The All company group stays public.", field="visibility")
    values = dict(changes)
    if not values.get("official", group.official):
        values["official_kind"] = None  # a kind only means something for an official group
    return values


async def update(session: AsyncSession, *, group: Group, changes: dict, actor_id: UUID | None) -> Group:
    """Apply settings (already authorized) and publish the new snapshot with what changed."""
    values = _settings(group, changes)
    changed = sorted(k for k, v in values.items() if getattr(group, k) != v)
    if "external_id" in changed and values["external_id"] is not None and await get_by_external_id(
            session, external_id=values["external_id"]):
        raise ExternalIdTaken(f"A group already has the external id {values['external_id']}.")
    if "visibility" in changed:
        await _settle_join_requests(session, group=group, visibility=values["visibility"], actor_id=actor_id)
    for key in changed:
        setattr(group, key, values[key])
    if changed:
        group.updated_at = utcnow()
        await _flush(session)
        await add_event(session, GroupUpdated(group=snapshot(group), changed=changed), subject=group.id,
                        actor=actor_id)
    return group


async def _settle_join_requests(session: AsyncSession, *, group: Group, visibility: str,
                                actor_id: UUID | None) -> None:
    """Requests only make sense for private groups: going public lets them in, going secret drops them."""
    if visibility == "private":
        return
    asked = list(await session.scalars(delete(GroupJoinRequest).where(GroupJoinRequest.group_id == group.id)
                                       .returning(GroupJoinRequest.person_id)))
    if visibility == "public" and asked:
        active = [p for p, is_active in (await people.activity(session, person_ids=set(asked))).items() if is_active]
        added = await _insert_members(session, group=group, person_ids=active)
        await add_events(session, [(GroupMemberAdded(group_id=group.id, person_id=p, role="member",
                                                     via="request_approved"), group.id) for p in added],
                         actor=actor_id)


async def _insert_members(session: AsyncSession, *, group: Group, person_ids: list[UUID]) -> list[UUID]:
    """Plain members, in one statement however many (ids as one array parameter); the ones that were not
    members yet, whose pending invites and join requests are closed. The caller writes the events."""
    if not person_ids:
        return []
    added = sorted(await session.scalars(insert(GroupMember).from_select(
        ["group_id", "person_id", "role", "created_at"],
        select(literal(group.id), func.unnest(_ids(person_ids)), literal("member"),
               literal(utcnow(), DateTime(timezone=True))))
        .on_conflict_do_nothing().returning(GroupMember.person_id)))
    if added:
        for pending in (GroupInvite, GroupJoinRequest):
            await session.execute(delete(pending).where(pending.group_id == group.id,
                                                        pending.person_id == any_(_ids(added))))
    return added


async def _close_pending(session: AsyncSession, *, group_id: UUID, person_id: UUID) -> None:
    """Once someone is in, their invite and join request have nothing left to decide."""
    await session.execute(delete(GroupInvite).where(GroupInvite.group_id == group_id,
                                                    GroupInvite.person_id == person_id))
    await session.execute(delete(GroupJoinRequest).where(GroupJoinRequest.group_id == group_id,
                                                         GroupJoinRequest.person_id == person_id))


async def add_member(session: AsyncSession, *, group: Group, person_id: UUID, role: str = "member",
                     via: str = "added", actor_id: UUID | None) -> bool:
    """Make someone a member (already authorized); True if they were not one. Repeating it changes nothing."""
    added = False
    if not group.all_company:  # every active person already belongs there
        await people.get_active_or_raise(session, person_id=person_id)
        added = await session.scalar(insert(GroupMember).values(group_id=group.id, person_id=person_id, role=role)
                                     .on_conflict_do_nothing().returning(GroupMember.person_id)) is not None
        await _close_pending(session, group_id=group.id, person_id=person_id)
        if added:
            await add_event(session, GroupMemberAdded(group_id=group.id, person_id=person_id, role=role, via=via),
                            subject=group.id, actor=actor_id)
    return added


async def remove_member(session: AsyncSession, *, group: Group, person_id: UUID, reason: str = "removed",
                        actor_id: UUID | None) -> bool:
    """End a membership (already authorized); True if there was one. Repeating it changes nothing."""
    _refuse_all_company(group)
    removed = await session.scalar(delete(GroupMember).where(GroupMember.group_id == group.id,
                                                             GroupMember.person_id == person_id)
                                   .returning(GroupMember.person_id))
    if removed is not None:
        await add_event(session, GroupMemberRemoved(group_id=group.id, person_id=person_id, reason=reason),
                        subject=group.id, actor=actor_id)
    return removed is not None


async def set_provisioned_members(session: AsyncSession, *, group: Group, person_ids: set[UUID]) -> None:
    """Provisioning: the group's members become exactly `person_ids` (active people, already checked),
    in a fixed number of statements whatever the size (ids travel as one array parameter), and the
    events of every membership that changed in one outbox write."""
    _refuse_all_company(group)
    current = set(await session.scalars(select(GroupMember.person_id).where(GroupMember.group_id == group.id)))
    to_add, to_remove = sorted(person_ids - current), sorted(current - person_ids)
    added = await _insert_members(session, group=group, person_ids=to_add)
    removed = sorted(await session.scalars(delete(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.person_id == any_(_ids(to_remove)))
        .returning(GroupMember.person_id))) if to_remove else []
    await add_events(session, [(GroupMemberAdded(group_id=group.id, person_id=p, role="member", via="provisioned"),
                                group.id) for p in added]
                     + [(GroupMemberRemoved(group_id=group.id, person_id=p, reason="deprovisioned"), group.id)
                        for p in removed], actor=None)


def _ids(ids: list[UUID]):
    """A list of ids as one array parameter (an IN list has one parameter per id, and PostgreSQL a limit)."""
    return bindparam(None, ids, type_=ARRAY(Uuid))


async def ensure_all_company_group(session: AsyncSession) -> Group:
    """Create the All company group when absent (the caller commits); safe to run on every replica at start."""
    stmt = select(Group).where(Group.all_company.is_(True))
    existing = await session.scalar(stmt)
    if existing is not None:
        return existing
    group = Group(name=ALL_COMPANY_NAME, description="Everyone in the company.", visibility="public", official=True,
                  official_kind="company", all_company=True, admins_only_posting=True)
    try:
        async with session.begin_nested():  # a lost race undoes this insert only; the caller commits
            return await _insert(session, group=group, owner_id=None, actor_id=None)
    except GroupConflict:  # another replica won the race
        return await session.scalar(stmt)


# --- what a person does ------------------------------------------------------------------------------

async def create_as(session: AsyncSession, *, data: GroupCreateRequest, user: CurrentUser) -> Group:
    """A person creates a group and owns it; official groups are for company admins."""
    if data.official and not user.has_role("admin"):
        raise OfficialNeedsCompanyAdmin("Only company admins create official groups.")
    return await create(session, data=GroupCreate(**data.model_dump()), actor_id=user.id)


async def update_settings(session: AsyncSession, *, standing: GroupAccess, changes: GroupUpdate) -> Group:
    """Group admins change settings; whether a group is official is for company admins."""
    _require_manager(standing)
    _ensure_open(standing.group)
    values = changes.model_dump(exclude_unset=True)
    official_changes = {k for k in ("official", "official_kind") if k in values
                        and values[k] != getattr(standing.group, k)}
    if official_changes and not standing.company_admin:
        raise OfficialNeedsCompanyAdmin("Only company admins make a group official or not.")
    return await update(session, group=standing.group, changes=values, actor_id=standing.person_id)


async def set_archived(session: AsyncSession, *, standing: GroupAccess, archived: bool) -> Group:
    """Owners archive a group (read-only from then on) or bring it back."""
    _require_owner(standing)
    if archived and standing.group.all_company:
        raise AllCompanyGroup("The All company group cannot be archived.")
    return await update(session, group=standing.group, changes={"archived": archived}, actor_id=standing.person_id)


async def get_all(session: AsyncSession, *, user: CurrentUser, page: PageParams, member: bool | None = None,
                  q: str | None = None):
    """Groups `user` can see, by name: public and private ones, and secret ones they belong to."""
    mine = or_(Group.all_company.is_(True),
               Group.id.in_(select(GroupMember.group_id).where(GroupMember.person_id == user.id)))
    stmt = select(Group)
    if not user.has_role("admin"):
        stmt = stmt.where(or_(Group.visibility != "secret", mine))
    if member is not None:
        stmt = stmt.where(mine if member else not_(mine))
    if q:
        needle = q.lower()
        stmt = stmt.where(or_(func.lower(Group.name).contains(needle, autoescape=True),
                              func.lower(Group.description).contains(needle, autoescape=True)))
    return await paginate(session, stmt, columns=[Group.name, Group.id], page=page, descending=False)


async def views(session: AsyncSession, *, groups: list[Group], user: CurrentUser) -> list[GroupPublic]:
    """Groups as `user` sees them, with their own role in each."""
    roles = dict((await session.execute(select(GroupMember.group_id, GroupMember.role).where(
        GroupMember.person_id == user.id, GroupMember.group_id.in_([g.id for g in groups])))).all())
    return [GroupPublic.model_validate(g).model_copy(update={"my_role": "member" if g.all_company else roles.get(g.id)})
            for g in groups]


async def view(session: AsyncSession, *, group: Group, user: CurrentUser) -> GroupPublic:
    return (await views(session, groups=[group], user=user))[0]


async def members(session: AsyncSession, *, standing: GroupAccess, page: PageParams):
    """Active members by name; a private group's members are for its members."""
    if not standing.can_see_members:
        raise NotAGroupMember("Only members see who belongs to a private group.")
    group = standing.group
    stmt = select(Person).where(Person.active.is_(True))
    if not group.all_company:
        stmt = stmt.join(GroupMember, (GroupMember.person_id == Person.id) & (GroupMember.group_id == group.id))
    people, next_cursor = await paginate(session, stmt, columns=[Person.display_name, Person.id], page=page,
                                         descending=False)
    rows = {m.person_id: m for m in await session.scalars(select(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.person_id.in_([p.id for p in people])))}
    return [MemberPublic(person=PersonSummary.model_validate(p, from_attributes=True),
                         role=rows[p.id].role if p.id in rows else "member",
                         joined_at=rows[p.id].created_at if p.id in rows else None) for p in people], next_cursor


async def _pending_invite(session: AsyncSession, *, group_id: UUID, person_id: UUID) -> GroupInvite | None:
    return await session.scalar(select(GroupInvite).where(GroupInvite.group_id == group_id,
                                                          GroupInvite.person_id == person_id))


async def join(session: AsyncSession, *, standing: GroupAccess) -> JoinState:
    """Join a public group (or one you were invited to); ask to join a private one."""
    group, person_id = standing.group, standing.person_id
    if standing.is_member:
        return JoinState(state="member")
    _ensure_open(group)
    invited = await _pending_invite(session, group_id=group.id, person_id=person_id) is not None
    if group.visibility == "public" or invited or standing.company_admin:
        await add_member(session, group=group, person_id=person_id, via="invite" if invited else "joined",
                         actor_id=person_id)
        return JoinState(state="member")
    if group.visibility == "secret":  # invite only; callers already 404 non-members, this is the backstop
        raise GroupNotFound()
    request_id = await session.scalar(insert(GroupJoinRequest).values(group_id=group.id, person_id=person_id)
                                      .on_conflict_do_nothing().returning(GroupJoinRequest.id))
    if request_id is None:  # already pending
        request_id = await session.scalar(select(GroupJoinRequest.id).where(GroupJoinRequest.group_id == group.id,
                                                                            GroupJoinRequest.person_id == person_id))
    else:
        await add_event(session, GroupJoinRequested(request_id=request_id, group_id=group.id, person_id=person_id),
                        subject=group.id, actor=person_id)
    return JoinState(state="requested", request_id=request_id)


async def _lock(session: AsyncSession, group: Group) -> None:
    # Serializes ownership changes of one group, so two owners leaving at once cannot leave it ownerless.
    await session.execute(select(Group.id).where(Group.id == group.id).with_for_update())


async def _ensure_other_owner(session: AsyncSession, *, group: Group, person_id: UUID) -> None:
    others = await session.scalar(select(func.count()).where(GroupMember.group_id == group.id,
                                                             GroupMember.role == "owner",
                                                             GroupMember.person_id != person_id))
    if not others:
        raise LastOwner("Transfer ownership or make someone else an owner first.")


async def _role_or_raise(session: AsyncSession, *, group: Group, person_id: UUID) -> str:
    role = await role_of(session, group=group, person_id=person_id)
    if role is None:
        raise GroupMemberNotFound()
    return role


async def leave(session: AsyncSession, *, standing: GroupAccess) -> None:
    """Leave a group (or withdraw a join request); the last owner must hand over first."""
    group = standing.group
    _refuse_all_company(group)
    await _lock(session, group)
    if await role_of(session, group=group, person_id=standing.person_id) == "owner":
        await _ensure_other_owner(session, group=group, person_id=standing.person_id)
    await remove_member(session, group=group, person_id=standing.person_id, reason="left",
                        actor_id=standing.person_id)
    await _close_pending(session, group_id=group.id, person_id=standing.person_id)


async def remove(session: AsyncSession, *, standing: GroupAccess, person_id: UUID) -> None:
    """Group admins remove members; only owners remove owners, and never the last one."""
    _require_manager(standing)
    _refuse_all_company(standing.group)
    await _lock(session, standing.group)
    if await _role_or_raise(session, group=standing.group, person_id=person_id) == "owner":
        if not standing.is_owner:
            raise CannotRemoveOwner("Group admins cannot remove an owner.")
        await _ensure_other_owner(session, group=standing.group, person_id=person_id)
    await remove_member(session, group=standing.group, person_id=person_id, reason="removed",
                        actor_id=standing.person_id)


async def _set_role(session: AsyncSession, *, group: Group, person_id: UUID, role: str, actor_id: UUID) -> None:
    changed = await session.scalar(sql_update(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.person_id == person_id, GroupMember.role != role)
        .values(role=role).returning(GroupMember.person_id))
    if changed is not None:
        await add_event(session, GroupMemberRoleChanged(group_id=group.id, person_id=person_id, role=role),
                        subject=group.id, actor=actor_id)


async def change_role(session: AsyncSession, *, standing: GroupAccess, person_id: UUID, role: str) -> MemberPublic:
    """Group admins make members admins and back; only owners grant or take away ownership."""
    _require_manager(standing)
    _refuse_all_company(standing.group)
    await _lock(session, standing.group)
    current = await _role_or_raise(session, group=standing.group, person_id=person_id)
    if "owner" in (current, role) and not standing.is_owner:
        raise NotAGroupOwner("Only owners grant or take away ownership.")
    if current == "owner" and role != "owner":
        await _ensure_other_owner(session, group=standing.group, person_id=person_id)
    await _set_role(session, group=standing.group, person_id=person_id, role=role, actor_id=standing.person_id)
    return await _member_view(session, group=standing.group, person_id=person_id)


async def transfer_ownership(session: AsyncSession, *, standing: GroupAccess, person_id: UUID) -> MemberPublic:
    """An owner hands the group to a member and stays on as an admin."""
    _require_owner(standing)
    _refuse_all_company(standing.group)
    if person_id == standing.person_id:
        raise InvalidInput("You already own this group.", field="person_id")
    await _lock(session, standing.group)
    await _role_or_raise(session, group=standing.group, person_id=person_id)
    await _set_role(session, group=standing.group, person_id=person_id, role="owner", actor_id=standing.person_id)
    if standing.role == "owner":
        await _set_role(session, group=standing.group, person_id=standing.person_id, role="admin",
                        actor_id=standing.person_id)
    return await _member_view(session, group=standing.group, person_id=person_id)


async def _member_view(session: AsyncSession, *, group: Group, person_id: UUID) -> MemberPublic:
    member = await session.get(GroupMember, (group.id, person_id), populate_existing=True)
    person = await session.get(Person, person_id)
    return MemberPublic(person=PersonSummary.model_validate(person, from_attributes=True), role=member.role,
                        joined_at=member.created_at)


# --- invites and join requests -----------------------------------------------------------------------

def _invite_view(invite: GroupInvite, group: Group) -> InvitePublic:
    return InvitePublic(id=invite.id, group=GroupSummary.model_validate(group), person_id=invite.person_id,
                        inviter_id=invite.inviter_id, created_at=invite.created_at)


async def invite(session: AsyncSession, *, standing: GroupAccess, person_id: UUID) -> InvitePublic:
    """A group admin invites someone; inviting again returns the pending invite."""
    group = standing.group
    _require_manager(standing)
    _ensure_open(group)
    _refuse_all_company(group)
    await people.get_active_or_raise(session, person_id=person_id)
    if await role_of(session, group=group, person_id=person_id) is not None:
        raise AlreadyAMember("This person is already a member.", person_id=str(person_id))
    invite_id = await session.scalar(insert(GroupInvite).values(group_id=group.id, person_id=person_id,
                                                                inviter_id=standing.person_id)
                                     .on_conflict_do_nothing().returning(GroupInvite.id))
    if invite_id is not None:
        await add_event(session, GroupInvited(invite_id=invite_id, group_id=group.id, person_id=person_id,
                                              inviter_id=standing.person_id),
                        subject=group.id, actor=standing.person_id)
    return _invite_view(await _pending_invite(session, group_id=group.id, person_id=person_id), group)


async def my_invites(session: AsyncSession, *, user: CurrentUser, page: PageParams):
    """Invites waiting for `user`, newest first."""
    stmt = select(GroupInvite).where(GroupInvite.person_id == user.id)
    invites, next_cursor = await paginate(session, stmt, columns=[GroupInvite.created_at, GroupInvite.id], page=page)
    groups = {g.id: g for g in await session.scalars(select(Group).where(Group.id.in_([i.group_id for i in invites])))}
    return [_invite_view(i, groups[i.group_id]) for i in invites], next_cursor


async def _own_invite(session: AsyncSession, *, invite_id: UUID, user: CurrentUser) -> GroupInvite:
    invite = await session.get(GroupInvite, invite_id, with_for_update=True)
    if invite is None or invite.person_id != user.id:  # someone else's invite does not exist for you
        raise GroupInviteNotFound()
    return invite


async def accept_invite(session: AsyncSession, *, invite_id: UUID, user: CurrentUser) -> Group:
    invite = await _own_invite(session, invite_id=invite_id, user=user)
    group = await get_or_raise(session, group_id=invite.group_id)
    _ensure_open(group)
    await add_member(session, group=group, person_id=user.id, via="invite", actor_id=user.id)
    return group


async def decline_invite(session: AsyncSession, *, invite_id: UUID, user: CurrentUser) -> None:
    await session.delete(await _own_invite(session, invite_id=invite_id, user=user))


async def join_requests(session: AsyncSession, *, standing: GroupAccess, page: PageParams):
    """Pending requests to join, oldest first (a queue for the group's admins)."""
    _require_manager(standing)
    stmt = select(GroupJoinRequest).where(GroupJoinRequest.group_id == standing.group.id)
    requests, next_cursor = await paginate(session, stmt, columns=[GroupJoinRequest.created_at, GroupJoinRequest.id],
                                           page=page, descending=False)
    askers = await people.by_ids(session, person_ids=[r.person_id for r in requests])
    return [JoinRequestPublic(id=r.id, person=PersonSummary.model_validate(askers[r.person_id], from_attributes=True),
                              created_at=r.created_at) for r in requests], next_cursor


async def _group_request(session: AsyncSession, *, standing: GroupAccess, request_id: UUID) -> GroupJoinRequest:
    _require_manager(standing)
    request = await session.get(GroupJoinRequest, request_id, with_for_update=True)
    if request is None or request.group_id != standing.group.id:
        raise JoinRequestNotFound()
    return request


async def approve_request(session: AsyncSession, *, standing: GroupAccess, request_id: UUID) -> None:
    request = await _group_request(session, standing=standing, request_id=request_id)
    _ensure_open(standing.group)
    await add_member(session, group=standing.group, person_id=request.person_id, via="request_approved",
                     actor_id=standing.person_id)


async def deny_request(session: AsyncSession, *, standing: GroupAccess, request_id: UUID) -> None:
    await session.delete(await _group_request(session, standing=standing, request_id=request_id))
