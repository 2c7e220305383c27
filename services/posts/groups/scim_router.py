"""SCIM 2.0 `/scim/v2/Groups`: served by the groups domain, behind identity's SCIM token and error rendering.

Identity (people, auth, SCIM Users) never imports groups; SCIM Groups is a groups adapter, so it lives
here and uses identity's SCIM plumbing. It is mounted before identity's SCIM router, whose catch-all
answers the paths nobody serves.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from scim2_models import Context, ListResponse, PatchOp, ResponseParameters

from services.posts.db import SessionDep
from services.posts.groups import scim as groups
from services.posts.groups.models import Group
from services.posts.scim.errors import ScimNotFound, ScimRoute, scim_response
from services.posts.scim.router import Fields, Payload, base_url, page, require_scim_token, serves_scim
from services.posts.scim.schemas import POLICY, ScimGroup

router = serves_scim(APIRouter(prefix="/scim/v2", tags=["scim"], route_class=ScimRoute,
                               dependencies=[Depends(require_scim_token)]))


async def scim_group(group_id: str, session: SessionDep) -> Group:
    """The provisioned group a /Groups/{id} addresses."""
    group = await groups.get(session, group_id=group_id)
    if group is None:
        raise ScimNotFound(f"No group {group_id}.")
    return group


GroupDep = Annotated[Group, Depends(scim_group)]


async def group_response(group: Group, request: Request, session, *, status: int = 200,
                         fields: ResponseParameters | None = None) -> Response:
    members = (await groups.members_of(session, group_ids=[group.id]))[group.id]
    resource = groups.to_resource(group, members, base_url=base_url(request))
    headers = {"ETag": resource.meta.version} | ({"Location": resource.meta.location} if status == 201 else {})
    return scim_response(resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=fields),
                         status=status, headers=headers)


@router.post("/Groups", status_code=201)
async def create_group(body: Payload, request: Request, session: SessionDep):
    """Provision a group with its members."""
    resource = ScimGroup.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=POLICY)
    group = await groups.create(session, resource=resource)
    return await group_response(group, request, session, status=201)


@router.get("/Groups")
async def list_groups(request: Request, session: SessionDep, fields: Fields,
                      paging: Annotated[tuple[int, int], Depends(page)], filter: str | None = None):
    """Provisioned groups matching a filter, one page at a time."""
    start_index, count = paging
    total, found = await groups.search(session, filter=filter, start_index=start_index, count=count)
    members = await groups.members_of(session, group_ids=[g.id for g in found]) if found else {}
    resources = [groups.to_resource(g, members[g.id], base_url=base_url(request)) for g in found]
    listing = ListResponse[ScimGroup](total_results=total, start_index=start_index, items_per_page=len(resources),
                                      resources=resources)
    return scim_response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=fields))


@router.get("/Groups/{group_id}")
async def get_group(group: GroupDep, request: Request, session: SessionDep, fields: Fields):
    """One provisioned group."""
    return await group_response(group, request, session, fields=fields)


@router.put("/Groups/{group_id}")
async def replace_group(group: GroupDep, body: Payload, request: Request, session: SessionDep):
    """Replace a group's name, externalId and members."""
    resource = ScimGroup.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY)
    group = await groups.replace(session, group=group, resource=resource)
    return await group_response(group, request, session)


@router.patch("/Groups/{group_id}")
async def patch_group(group: GroupDep, body: Payload, request: Request, session: SessionDep):
    """Rename, add and remove members (Okta's and Entra's forms included)."""
    operations = PatchOp[ScimGroup].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY)
    group = await groups.patch(session, group=group, operations=operations, base_url=base_url(request))
    return await group_response(group, request, session)


@router.delete("/Groups/{group_id}", status_code=204)
async def delete_group(group: GroupDep, session: SessionDep):
    """Deprovision: the group is archived, never deleted."""
    await groups.delete(session, group=group)
    return Response(status_code=204)
