from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.notifications.db import SessionDep
from services.notifications.digests import service

router = APIRouter(prefix="/api/v1/notifications/unsubscribe", tags=["email digests"])
Token = Annotated[str, Query(min_length=10, max_length=100)]
# Which emails the link leaves: digests (links without `list`), or message emails.
EmailList = Annotated[service.UnsubscribeList, Query(alias="list")]


@router.get("", response_class=HTMLResponse)
async def confirm_unsubscribe(token: Token, request: Request, list_: EmailList = "digest"):
    """The link in the email: a page with a button (a GET changes nothing, so link scanners cannot unsubscribe)."""
    service.read_unsubscribe_token(request.app.state.settings.unsubscribe_secret, token, list_)
    return HTMLResponse(f'<html><body><form method="post"><p>Stop Hearth {service.LISTS[list_]}?</p>'
                        '<button type="submit">Unsubscribe</button></form></body></html>')


@router.post("", response_class=HTMLResponse)
async def unsubscribe(token: Token, request: Request, session: SessionDep, list_: EmailList = "digest"):
    """One-click unsubscribe (RFC 8058: mail clients POST `List-Unsubscribe=One-Click`); no sign-in needed."""
    await service.unsubscribe(session, token=token, settings=request.app.state.settings, list_=list_)
    return HTMLResponse(f"<html><body><p>You will not get {service.LISTS[list_]} any more.</p></body></html>")
