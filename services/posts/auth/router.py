from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from services.posts.auth import api_tokens, service, sso
from services.posts.auth.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenPublic,
    LoginRequest,
    RefreshRequest,
    TokenPair,
)
from services.posts.db import SessionDep
from shared.auth import CurrentUserDep
from shared.context import request_client_address
from shared.idempotency import IdempotentRoute
from shared.pagination import Page, PageDep

router = APIRouter(tags=["auth"], route_class=IdempotentRoute)


def token_issuer(request: Request) -> service.TokenIssuer:
    return request.app.state.token_issuer


def oidc_client(request: Request) -> sso.OidcClient:
    """The app's OIDC client, created on first use (discovery is fetched lazily, then kept)."""
    settings = request.app.state.settings
    if not settings.oidc_enabled:
        raise sso.SsoNotConfigured("Single sign-on is not configured on this server.")
    if getattr(request.app.state, "oidc_client", None) is None:
        request.app.state.oidc_client = sso.OidcClient(settings)
    return request.app.state.oidc_client


IssuerDep = Annotated[service.TokenIssuer, Depends(token_issuer)]
OidcDep = Annotated[sso.OidcClient, Depends(oidc_client)]


@router.post("/auth/login", response_model=TokenPair)
async def login(data: LoginRequest, request: Request, session: SessionDep, issuer: IssuerDep):
    """Exchange email and password for an access token and a refresh token."""
    return await service.login(session, issuer=issuer, email=data.email, password=data.password,
                               ip=request_client_address(request))


@router.post("/auth/refresh", response_model=TokenPair)
async def refresh(data: RefreshRequest, session: SessionDep, issuer: IssuerDep):
    """Rotate a refresh token into a new token pair."""
    return await service.refresh(session, issuer=issuer, refresh_token=data.refresh_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(data: RefreshRequest, session: SessionDep):
    """End the sign-in the refresh token belongs to."""
    await service.logout(session, refresh_token=data.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/.well-known/jwks.json")
async def jwks(issuer: IssuerDep):
    """Public keys that verify Hearth access tokens: the current key first, then rotated-out ones."""
    return issuer.jwks()


@router.post("/auth/tokens", response_model=ApiTokenCreated, status_code=status.HTTP_201_CREATED)
async def create_api_token(data: ApiTokenCreate, session: SessionDep, user: CurrentUserDep, issuer: IssuerDep):
    """Create an API token for an integration; the token is in this response only."""
    return await api_tokens.create(session, issuer=issuer, user=user, data=data)


@router.get("/auth/tokens", response_model=Page[ApiTokenPublic])
async def list_api_tokens(session: SessionDep, user: CurrentUserDep, page: PageDep):
    """The caller's API tokens, newest first, without their secrets."""
    items, next_cursor = await api_tokens.get_all(session, person_id=user.id, page=page)
    return Page(items=items, next_cursor=next_cursor)


@router.delete("/auth/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_token(token_id: UUID, session: SessionDep, user: CurrentUserDep):
    """Revoke one of the caller's API tokens in every service."""
    await api_tokens.revoke(session, person_id=user.id, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/sso/login", status_code=status.HTTP_302_FOUND, response_class=RedirectResponse)
async def sso_login(session: SessionDep, client: OidcDep):
    """Start single sign-on: redirect to the identity provider."""
    return RedirectResponse(await sso.start_login(session, client=client), status_code=status.HTTP_302_FOUND)


@router.get("/auth/sso/callback", response_model=TokenPair)
async def sso_callback(session: SessionDep, client: OidcDep, issuer: IssuerDep,
                       state: Annotated[str, Query(min_length=16, max_length=256)],
                       code: Annotated[str | None, Query(max_length=2048)] = None,
                       error: Annotated[str | None, Query(max_length=256)] = None):
    """Finish single sign-on: the same token pair as /auth/login."""
    return await sso.finish_login(session, client=client, issuer=issuer, state=state, code=code, error=error)
