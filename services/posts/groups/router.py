from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response, status

from services.posts.db import SessionDep
from services.posts.groups import service
from services.posts.groups.schemas import (GroupCreateRequest, GroupPublic, GroupUpdate, InviteCreate, InvitePublic,
                                           JoinRequestPublic, JoinState, MemberPublic, OwnershipTransfer, RoleChange)
from services.posts.groups.service import GroupAccess
from shared.auth import CurrentUser, CurrentUserDep, require_scope
from shared.idempotency import IdempotentRoute
from shared.pagination import Page, PageDep
from shared.types import SafeText

router = APIRouter(prefix="/api/v1/groups", tags=["groups"], route_class=IdempotentRoute)

Reader = Annotated[CurrentUser, require_scope("groups:read")]
Writer = Annotated[CurrentUser, require_scope("groups:write")]
NO_CONTENT = status.HTTP_204_NO_CONTENT


async def visible_group(group_id: UUID, session: SessionDep, user: CurrentUserDep) -> GroupAccess:
    """The group and the caller's standing in it; 404 when it is secret to the caller."""
    return await service.access_or_raise(session, group_id=group_id, user=user)


VisibleGroup = Annotated[GroupAccess, Depends(visible_group)]


@router.post("", response_model=GroupPublic, status_code=status.HTTP_201_CREATED)
async def create_group(data: GroupCreateRequest, session: SessionDep, user: Writer):
    """Create a group; you become its owner."""
    return await service.view(session, group=await service.create_as(session, data=data, user=user), user=user)


@router.get("", response_model=Page[GroupPublic])
async def list_groups(session: SessionDep, user: Reader, page: PageDep, member: bool | None = None,
                      q: Annotated[SafeText(100) | None, Query()] = None):
    """Groups you can see, by name; `member=true` for yours, `q` to search names and descriptions."""
    groups, next_cursor = await service.get_all(session, user=user, page=page, member=member, q=q)
    return Page(items=await service.views(session, groups=groups, user=user), next_cursor=next_cursor)


@router.get("/invites", response_model=Page[InvitePublic])
async def list_my_invites(session: SessionDep, user: Reader, page: PageDep):
    """Invites waiting for you, newest first."""
    items, next_cursor = await service.my_invites(session, user=user, page=page)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/invites/{invite_id}/accept", response_model=GroupPublic)
async def accept_invite(invite_id: UUID, session: SessionDep, user: Writer):
    """Accept an invite: you join the group."""
    return await service.view(session, group=await service.accept_invite(session, invite_id=invite_id, user=user),
                              user=user)


@router.post("/invites/{invite_id}/decline", status_code=NO_CONTENT)
async def decline_invite(invite_id: UUID, session: SessionDep, user: Writer):
    """Decline an invite (the inviter is not told)."""
    await service.decline_invite(session, invite_id=invite_id, user=user)
    return Response(status_code=NO_CONTENT)


@router.get("/{group_id}", response_model=GroupPublic)
async def read_group(standing: VisibleGroup, session: SessionDep, user: Reader):
    """A group you can see."""
    return await service.view(session, group=standing.group, user=user)


@router.patch("/{group_id}", response_model=GroupPublic)
async def update_group(data: GroupUpdate, standing: VisibleGroup, session: SessionDep, user: Writer):
    """Change a group's settings (its owners and admins)."""
    group = await service.update_settings(session, standing=standing, changes=data)
    return await service.view(session, group=group, user=user)


@router.post("/{group_id}/archive", response_model=GroupPublic)
async def archive_group(standing: VisibleGroup, session: SessionDep, user: Writer):
    """Archive a group: read-only from now on (its owners)."""
    group = await service.set_archived(session, standing=standing, archived=True)
    return await service.view(session, group=group, user=user)


@router.post("/{group_id}/unarchive", response_model=GroupPublic)
async def unarchive_group(standing: VisibleGroup, session: SessionDep, user: Writer):
    """Bring an archived group back (its owners)."""
    group = await service.set_archived(session, standing=standing, archived=False)
    return await service.view(session, group=group, user=user)


@router.get("/{group_id}/members", response_model=Page[MemberPublic])
async def list_members(standing: VisibleGroup, session: SessionDep, user: Reader, page: PageDep):
    """Members by name (a private group's members are for its members)."""
    items, next_cursor = await service.members(session, standing=standing, page=page)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/{group_id}/join", response_model=JoinState, status_code=status.HTTP_201_CREATED,
             responses={202: {"model": JoinState, "description": "Requested: the group is private"}})
async def join_group(standing: VisibleGroup, session: SessionDep, user: Writer, response: Response):
    """Join a public group (201), or ask to join a private one (202)."""
    state = await service.join(session, standing=standing)
    if state.state == "requested":
        response.status_code = status.HTTP_202_ACCEPTED
    return state


@router.post("/{group_id}/leave", status_code=NO_CONTENT)
async def leave_group(standing: VisibleGroup, session: SessionDep, user: Writer):
    """Leave a group, or withdraw your request to join it."""
    await service.leave(session, standing=standing)
    return Response(status_code=NO_CONTENT)


@router.patch("/{group_id}/members/{person_id}", response_model=MemberPublic)
async def change_member_role(person_id: UUID, data: RoleChange, standing: VisibleGroup, session: SessionDep,
                             user: Writer):
    """Change a member's role (admins; ownership is for owners)."""
    return await service.change_role(session, standing=standing, person_id=person_id, role=data.role)


@router.delete("/{group_id}/members/{person_id}", status_code=NO_CONTENT)
async def remove_member(person_id: UUID, standing: VisibleGroup, session: SessionDep, user: Writer):
    """Remove a member (admins; only owners remove owners)."""
    await service.remove(session, standing=standing, person_id=person_id)
    return Response(status_code=NO_CONTENT)


@router.post("/{group_id}/transfer-ownership", response_model=MemberPublic)
async def transfer_ownership(data: OwnershipTransfer, standing: VisibleGroup, session: SessionDep, user: Writer):
    """Hand the group to a member; you stay on as an admin."""
    return await service.transfer_ownership(session, standing=standing, person_id=data.person_id)


@router.post("/{group_id}/invites", response_model=InvitePublic, status_code=status.HTTP_201_CREATED)
async def invite_person(data: InviteCreate, standing: VisibleGroup, session: SessionDep, user: Writer):
    """Invite someone to the group (its owners and admins)."""
    return await service.invite(session, standing=standing, person_id=data.person_id)


@router.get("/{group_id}/join-requests", response_model=Page[JoinRequestPublic])
async def list_join_requests(standing: VisibleGroup, session: SessionDep, user: Reader, page: PageDep):
    """Pending requests to join, oldest first (its owners and admins)."""
    items, next_cursor = await service.join_requests(session, standing=standing, page=page)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/{group_id}/join-requests/{request_id}/approve", status_code=NO_CONTENT)
async def approve_join_request(request_id: UUID, standing: VisibleGroup, session: SessionDep, user: Writer):
    """Let the requester in."""
    await service.approve_request(session, standing=standing, request_id=request_id)
    return Response(status_code=NO_CONTENT)


@router.post("/{group_id}/join-requests/{request_id}/deny", status_code=NO_CONTENT)
async def deny_join_request(request_id: UUID, standing: VisibleGroup, session: SessionDep, user: Writer):
    """Turn a request down (the requester is not told)."""
    await service.deny_request(session, standing=standing, request_id=request_id)
    return Response(status_code=NO_CONTENT)
