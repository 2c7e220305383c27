from typing import Annotated

from fastapi import APIRouter, Query

from services.analytics.db import SessionDep
from services.analytics.metrics import service
from services.analytics.metrics.schemas import Overview
from shared.auth import CurrentUser, require_roles, require_scope

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"],
                   dependencies=[require_roles("communications"), require_scope("analytics:read")])


@router.get("/overview", response_model=Overview)
async def read_overview(session: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 28):
    """Posts per day over the last `days` UTC days (today included)."""
    return await service.overview(session, days=days)
