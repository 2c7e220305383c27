from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from services.posts.auth import service
from services.posts.auth.schemas import LoginRequest, RefreshRequest, TokenPair
from services.posts.db import SessionDep

router = APIRouter(tags=["auth"])


def token_issuer(request: Request) -> service.TokenIssuer:
    return request.app.state.token_issuer


IssuerDep = Annotated[service.TokenIssuer, Depends(token_issuer)]


@router.post("/auth/login", response_model=TokenPair)
async def login(data: LoginRequest, session: SessionDep, issuer: IssuerDep):
    """Exchange email and password for an access token and a refresh token."""
    return await service.login(session, issuer=issuer, email=data.email, password=data.password)


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
    """Public keys that verify Hearth access tokens."""
    return issuer.jwks()
