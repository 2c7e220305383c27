"""SCIM 2.0 (RFC 7643/7644) provisioning for Okta, Entra ID and other identity providers."""

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from scim2_models import Context, ListResponse, Meta, PatchOp, ResponseParameters
from starlette.routing import Match

from services.posts.auth.own_session import own_session
from services.posts.db import SessionDep
from services.posts.people.models import Person
from services.posts.scim import users
from services.posts.scim.errors import (
    ScimError,
    ScimNotFound,
    ScimPreconditionFailed,
    ScimRoute,
    ScimUnauthorized,
    scim_response,
)
from services.posts.scim.schemas import (
    MAX_RESULTS,
    POLICY,
    PROVIDER,
    ScimUser,
)
from shared import ratelimit
from shared.context import request_client_address
from shared.ratelimit import parse_rule


async def require_scim_token(request: Request, session: SessionDep) -> None:
    """The caller holds a SCIM token (HEARTH_SCIM_TOKEN or _NEXT), compared in constant time; an address
    that failed too often is refused (429) before its token is even looked at."""
    settings = request.app.state.settings
    rule = parse_rule("scim_auth_failures", settings.scim_auth_failures)
    address = f"ip:{request_client_address(request) or 'unknown'}"
    # In a session of its own: a failure must be counted although this request then fails (401).
    async with own_session(session) as own:
        failures = await ratelimit.peek(own, rule=rule, subject=address)
        if failures.hits >= rule.limit:
            raise ScimError("Too many failed SCIM sign-ins from this address; try again later.", status=429,
                            headers={"Retry-After": str(max(1, failures.reset_after))})
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        presented = token.strip().encode()
        # Every configured token is compared (no early exit), so timing says nothing about which matched.
        matches = [hmac.compare_digest(presented, expected.encode()) for expected in settings.scim_tokens]
        refused = scheme.lower() != "bearer" or not any(matches)
        if refused:
            await ratelimit.hit(own, rule=rule, subject=address)
    if refused:
        raise ScimUnauthorized()


router = APIRouter(prefix="/scim/v2", tags=["scim"], route_class=ScimRoute,
                   dependencies=[Depends(require_scim_token)])

Payload = Annotated[dict[str, Any], Body(media_type="application/scim+json")]

# Routers of SCIM resources that other domains serve (Groups, by the groups domain): identity never imports
# them; they register here so that the catch-all below answers 405, not 404, for a method they lack.
_resource_routers: list[APIRouter] = []


def serves_scim(resource_router: APIRouter) -> APIRouter:
    """Register a router of SCIM resources served outside identity (mount it before this one)."""
    _resource_routers.append(resource_router)
    return resource_router


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + router.prefix


def response_parameters(attributes: str | None = None,
                        excluded_attributes: Annotated[str | None, Query(alias="excludedAttributes")] = None):
    """RFC 7644 §3.9 `attributes` / `excludedAttributes` (Entra asks for groups without their members)."""
    return ResponseParameters.model_validate({"attributes": attributes, "excluded_attributes": excluded_attributes})


def page(start_index: Annotated[int, Query(alias="startIndex")] = 1,
         count: Annotated[int, Query()] = 100) -> tuple[int, int]:
    """RFC 7644 §3.4.2.4: startIndex below 1 means 1, a negative count means 0."""
    return max(start_index, 1), min(max(count, 0), MAX_RESULTS)


async def scim_person(user_id: str, request: Request, session: SessionDep) -> Person:
    """The person a /Users/{id} addresses, honouring If-Match on writes."""
    person = await users.get(session, user_id=user_id)
    if person is None:
        raise ScimNotFound(f"No user {user_id}.")
    if_match = request.headers.get("If-Match")
    if if_match and if_match.strip() != "*" and users.etag(person) not in {t.strip() for t in if_match.split(",")}:
        raise ScimPreconditionFailed()
    return person


PersonDep = Annotated[Person, Depends(scim_person)]
Fields = Annotated[ResponseParameters, Depends(response_parameters)]


def user_response(person: Person, request: Request, *, status: int = 200, fields: ResponseParameters | None = None,
                  context: Context = Context.RESOURCE_QUERY_RESPONSE) -> Response:
    user = users.to_resource(person, base_url=base_url(request))
    headers = {"ETag": user.meta.version} | ({"Location": user.meta.location} if status == 201 else {})
    return scim_response(user.model_dump(scim_ctx=context, response_parameters=fields), status=status,
                         headers=headers)


@router.post("/Users", status_code=201)
async def create_user(body: Payload, request: Request, session: SessionDep):
    """Provision a user."""
    user = ScimUser.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=POLICY)
    person = await users.create(session, user=user)
    return user_response(person, request, status=201, context=Context.RESOURCE_CREATION_RESPONSE)


@router.get("/Users")
async def list_users(request: Request, session: SessionDep, fields: Fields,
                     paging: Annotated[tuple[int, int], Depends(page)], filter: str | None = None):
    """Users matching a filter, one page at a time."""
    start_index, count = paging
    total, found = await users.search(session, filter=filter, start_index=start_index, count=count)
    resources = [users.to_resource(p, base_url=base_url(request)) for p in found]
    listing = ListResponse[ScimUser](total_results=total, start_index=start_index, items_per_page=len(resources),
                                     resources=resources)
    return scim_response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=fields))


@router.get("/Users/{user_id}")
async def get_user(person: PersonDep, request: Request, fields: Fields):
    """One user."""
    return user_response(person, request, fields=fields)


@router.put("/Users/{user_id}")
async def replace_user(person: PersonDep, body: Payload, request: Request, session: SessionDep):
    """Replace a user's provisioned attributes."""
    user = ScimUser.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY)
    person = await users.replace(session, person=person, user=user)
    return user_response(person, request, context=Context.RESOURCE_REPLACEMENT_RESPONSE)


@router.patch("/Users/{user_id}")
async def patch_user(person: PersonDep, body: Payload, request: Request, session: SessionDep):
    """Apply PATCH operations (Okta's and Entra's forms included)."""
    operations = PatchOp[ScimUser].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY)
    person = await users.patch(session, person=person, operations=operations, base_url=base_url(request))
    return user_response(person, request, context=Context.RESOURCE_PATCH_RESPONSE)


@router.delete("/Users/{user_id}", status_code=204)
async def delete_user(person: PersonDep, session: SessionDep):
    """Deprovision: the person is deactivated, never deleted."""
    await users.delete(session, person=person)
    return Response(status_code=204)


def _discovery(resource, request: Request, *, kind: str, key: str) -> dict:
    body = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    location = f"{base_url(request)}/{kind}" + (f"/{key}" if key else "")
    return body | {"meta": Meta(resource_type=resource.__class__.__name__, location=location)
                   .model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)}


def _listing(items: list[dict]) -> dict:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": len(items),
            "startIndex": 1, "itemsPerPage": len(items), "Resources": items}


@router.get("/ServiceProviderConfig")
async def service_provider_config(request: Request):
    """What this SCIM service supports."""
    return scim_response(_discovery(PROVIDER.config, request, kind="ServiceProviderConfig", key=""))


@router.get("/Schemas")
async def list_schemas(request: Request):
    """The schemas of User, the enterprise extension and Group."""
    return scim_response(_listing([_discovery(s, request, kind="Schemas", key=s.id) for s in PROVIDER.schemas]))


@router.get("/Schemas/{schema_id}")
async def get_schema(schema_id: str, request: Request):
    """One schema, by its URN."""
    schema = next((s for s in PROVIDER.schemas if s.id.lower() == schema_id.lower()), None)
    if schema is None:
        raise ScimNotFound(f"No schema {schema_id}.")
    return scim_response(_discovery(schema, request, kind="Schemas", key=schema.id))


@router.get("/ResourceTypes")
async def list_resource_types(request: Request):
    """User and Group."""
    return scim_response(_listing([_discovery(r, request, kind="ResourceTypes", key=r.id)
                                   for r in PROVIDER.resource_types]))


@router.get("/ResourceTypes/{type_id}")
async def get_resource_type(type_id: str, request: Request):
    """One resource type."""
    found = next((r for r in PROVIDER.resource_types if r.id.lower() == type_id.lower()), None)
    if found is None:
        raise ScimNotFound(f"No resource type {type_id}.")
    return scim_response(_discovery(found, request, kind="ResourceTypes", key=found.id))


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def not_a_scim_endpoint(request: Request):
    """Anything else under /scim/v2: a SCIM error (405 on a known path, else 404), never problem+json."""
    if request.url.path.endswith("/.search"):
        raise ScimError("Searching with POST /.search is not supported; use GET with a filter.", status=501)
    scope = {"type": "http", "path": request.url.path, "method": request.method, "root_path": ""}
    routes = [route for r in (router, *_resource_routers) for route in r.routes]
    allowed = sorted({method for route in routes if route.path != f"{router.prefix}/{{path:path}}"
                      and route.matches(scope)[0] == Match.PARTIAL for method in route.methods or ()})
    if allowed:
        raise ScimError(f"{request.method} is not supported here.", status=405, headers={"Allow": ", ".join(allowed)})
    raise ScimNotFound(f"No SCIM endpoint at {request.url.path}.")
